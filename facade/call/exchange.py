"""Call time: OAuth 2.0 Token Exchange (RFC 8693), one backend token per caller.

The caller's verified inbound token is the subject token; the façade authenticates as its
own client (`client_secret_basic` or `client_secret_post`) and asks for a token for the
backend's `audience`/`resource` and `scope`. The MCP spec forbids passing the inbound token
through; this is its sanctioned replacement.

    cache (per principal, audience, scopes; LRU, in memory) → one exchange in flight per
    principal → breaker → deadline { attempt → retry on connect errors / 502 / 503 / 504 }

Exceptions (fastmcp `ToolError`s, via `UpstreamError`; the token service's body is never
shown, only its `error` code is read):

    ExchangeRefused      outcome "exchange_refused": 401/403, or invalid_grant & co.: this
                         caller may not have a token for this backend
    ExchangeFailed       outcome "exchange_failed": the service failed, timed out, refused
                         the façade's own client, or answered something unusable
    ExchangeUnavailable  outcome "exchange_unavailable": its circuit breaker is open
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from facade.call.assertion import ASSERTION_TYPE, ClientAssertions
from facade.call.credentials import Secret
from facade.call.events import Observer
from facade.call.failures import UpstreamError
from facade.call.resilience import CircuitBreaker
from facade.call.scrub import register_ephemeral, register_secrets
from facade.tools import BackendSettings, TokenExchangeSettings

__all__ = ["GRANT_TYPE", "ExchangeFailed", "ExchangeRefused", "ExchangeUnavailable",
           "TokenExchanger"]

logger = logging.getLogger("facade.exchange")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
_RETRY_STATUSES = frozenset({502, 503, 504})
# Error codes (RFC 6749 §5.2, RFC 8693 §2.2.2) that say "not for this caller".
_REFUSALS = frozenset({"invalid_grant", "access_denied", "invalid_target", "invalid_scope",
                       "unauthorized_client", "insufficient_scope"})
_MAX_BODY = 64 * 1024


class ExchangeRefused(UpstreamError):
    outcome = "exchange_refused"


class ExchangeFailed(UpstreamError):
    outcome = "exchange_failed"

    def __init__(self, message: str, *, service_fault: bool = True) -> None:
        super().__init__(message)
        self.service_fault = service_fault  # counts toward opening the breaker


class ExchangeUnavailable(ExchangeFailed):
    outcome = "exchange_unavailable"


@dataclass(frozen=True)
class _Issued:
    token: str
    fresh_until: float  # monotonic time; after it the next call exchanges again


Sleep = Callable[[float], Awaitable[None]]


class TokenExchanger:
    """Exchanges callers' tokens at one token endpoint, for one backend."""

    def __init__(self, settings: TokenExchangeSettings, backend: BackendSettings, *,
                 environ: Mapping[str, str], transport: httpx.AsyncBaseTransport | None = None,
                 observer: Observer | None = None, sleep: Sleep = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings, self.backend = settings, backend
        self.observer = observer or Observer()
        where = "backend.auth.token_exchange"
        if settings.private_key_file is not None:
            self._secret = Secret(f"{where}.private_key_file", file=settings.private_key_file,
                                  environ=environ)
            self._assertions: ClientAssertions | None = ClientAssertions(
                settings, self._secret, f"{where}.private_key_file")
        else:
            key = "client_secret_file" if settings.client_secret_file else "client_secret_env"
            self._secret = Secret(f"{where}.{key}", env=settings.client_secret_env,
                                  file=settings.client_secret_file, environ=environ)
            self._assertions = None
        self._transport, self._sleep, self._clock = transport, sleep, clock
        self.breaker = CircuitBreaker(
            backend.breaker_failures, backend.breaker_reset_after, clock=clock,
            on_change=lambda state: self.observer.breaker_changed(settings.token_endpoint,
                                                                  state))
        self._cache: OrderedDict[Hashable, _Issued] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Task[_Issued]] = {}
        self._client: httpx.AsyncClient | None = None
        b = backend
        self._timeout = httpx.Timeout(connect=min(b.connect_timeout, b.timeout),
                                      read=min(b.read_timeout, b.timeout),
                                      write=min(b.write_timeout, b.timeout),
                                      pool=min(b.pool_timeout, b.timeout))
        self.exchanges = 0  # exchanges sent and answered with a token (for tests and probes)

    async def token_for(self, principal: Hashable, subject_token: str) -> str:
        """The backend token of `principal`: cached while fresh, else exchanged; callers
        of one principal arriving together share one exchange."""
        s = self.settings
        key = (principal, s.audience, s.resource, s.scopes)
        issued = self._cache.get(key)
        if issued is not None and issued.fresh_until > self._clock():
            self._cache.move_to_end(key)
            return issued.token
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._exchange_and_keep(key, subject_token))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._forget_pending(key, done))
        # One caller giving up (cancelled) must not cancel the exchange the others await.
        return (await asyncio.shield(task)).token

    def _forget_pending(self, key: Hashable, done: asyncio.Task[_Issued]) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every caller gave up

    async def _exchange_and_keep(self, key: Hashable, subject_token: str) -> _Issued:
        issued = await self.exchange(subject_token)
        if issued.fresh_until > self._clock():
            self._cache[key] = issued
            self._cache.move_to_end(key)
            while len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.pop(key, None)
        return issued

    async def exchange(self, subject_token: str) -> _Issued:
        """One exchange, through the breaker and within the backend's deadline."""
        register_ephemeral([subject_token])
        wait, ticket = self.breaker.admit()
        if wait is not None:
            self.observer.token_exchange(self.backend.base_url, "unavailable")
            raise ExchangeUnavailable(
                "The token service is failing, so facade is not calling it for now (circuit "
                f"breaker open); retry in {max(1, round(wait))} s")
        success: bool | None = None
        try:
            issued = await self._within_deadline(subject_token)
            success = True
        except ExchangeRefused:
            success = True  # the service works: it said no to this caller
            self.observer.token_exchange(self.backend.base_url, "refused")
            raise
        except ExchangeFailed as exc:
            success = not exc.service_fault
            self.observer.token_exchange(self.backend.base_url, "failed")
            raise
        finally:
            self.breaker.record(success, ticket)
        self.exchanges += 1
        self.observer.token_exchange(self.backend.base_url, "ok")
        return issued

    async def _within_deadline(self, subject_token: str) -> _Issued:
        deadline = self.backend.timeout
        try:
            async with asyncio.timeout(deadline):
                return await self._attempts(subject_token, time.monotonic() + deadline)
        except TimeoutError as exc:
            raise ExchangeFailed(f"The token service did not answer within the {deadline:g} s "
                                 "deadline; retry later") from exc

    async def _attempts(self, subject_token: str, deadline: float) -> _Issued:
        retries = self.backend.retry_attempts
        for attempt in range(retries + 1):
            try:
                response = await self._post(subject_token)
            except httpx.TransportError as exc:
                retryable = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if attempt == retries or not retryable:
                    raise _transport_failure(exc) from exc
                await self._back_off(attempt, deadline, "connect")
                continue
            if response.status_code in _RETRY_STATUSES and attempt < retries:
                await self._back_off(attempt, deadline, str(response.status_code))
                continue
            return self._issued(response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _back_off(self, attempt: int, deadline: float, reason: str) -> None:
        b = self.backend
        wait = random.uniform(0, min(b.retry_max_backoff, b.retry_backoff * 2 ** attempt))
        if time.monotonic() + wait >= deadline:
            raise ExchangeFailed(f"The token service kept failing ({reason}) until the "
                                 f"{b.timeout:g} s deadline; retry later")
        logger.info("retrying the token exchange for %s after %s", b.base_url, reason)
        await self._sleep(wait)

    async def _post(self, subject_token: str) -> httpx.Response:
        s = self.settings
        form = {"grant_type": GRANT_TYPE, "subject_token": subject_token,
                "subject_token_type": SUBJECT_TOKEN_TYPE,
                "requested_token_type": s.requested_token_type}
        if s.audience:
            form["audience"] = s.audience
        if s.resource:
            form["resource"] = s.resource
        if s.scopes:
            form["scope"] = " ".join(s.scopes)
        headers = {"Accept": "application/json"}
        if self._assertions is not None:  # private_key_jwt (RFC 7523 §2.2)
            form.update(client_id=s.client_id, client_assertion_type=ASSERTION_TYPE,
                        client_assertion=self._assertions.sign())
            return await self._client_for().post(s.token_endpoint, data=form, headers=headers)
        secret = self._secret.value()
        if s.client_auth == "client_secret_post":
            form.update(client_id=s.client_id, client_secret=secret)
        else:  # RFC 6749 §2.3.1: each part form-encoded before the basic-auth encoding
            pair = f"{quote(s.client_id, safe='')}:{quote(secret, safe='')}"
            encoded = base64.b64encode(pair.encode()).decode()
            register_secrets([encoded])
            headers["Authorization"] = f"Basic {encoded}"
        return await self._client_for().post(s.token_endpoint, data=form, headers=headers)

    def _client_for(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport, timeout=self._timeout, trust_env=False,
                follow_redirects=False)
        return self._client

    def _issued(self, response: httpx.Response) -> _Issued:
        status = response.status_code
        data = _json(response.content[:_MAX_BODY])
        if status != 200:
            raise _refusal(status, data.get("error") if data else None)
        token, kind = data.get("access_token") if data else None, \
            str(data.get("token_type", "Bearer")) if data else ""
        if not isinstance(token, str) or not token or any(c in token for c in " \r\n\t"):
            raise ExchangeFailed("The token service answered without a usable access token; "
                                 "tell the operator", service_fault=False)
        if kind.lower() not in ("bearer", "n_a"):
            raise ExchangeFailed(f"The token service issued a {kind[:20]!r} token, which "
                                 "facade cannot send; tell the operator", service_fault=False)
        register_ephemeral([token])
        expires_in = data.get("expires_in") if data else None
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and \
            not isinstance(expires_in, bool) else 0.0  # unknown: used for this call only
        fresh = lifetime - self.settings.refresh_before
        return _Issued(token, self._clock() + fresh)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _json(body: bytes) -> dict[str, object] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _refusal(status: int, error: object) -> UpstreamError:
    """The failure for a non-200 answer; built from the status and the `error` code only."""
    code = error if isinstance(error, str) else None
    logger.info("the token service answered %s (%s)", status, (code or "no error code")[:40])
    if code == "invalid_client":
        return ExchangeFailed("The token service refused the façade's own client credentials; "
                              "the operator must fix backend.auth.token_exchange",
                              service_fault=False)
    if status in (401, 403) or (status == 400 and code in _REFUSALS):
        return ExchangeRefused("The token service would not issue a backend token for this "
                               "user: the caller is not allowed to use this backend; ask the "
                               "operator for access")
    if status >= 500 or status == 429:
        return ExchangeFailed(f"The token service failed (status {status}); retry later")
    return ExchangeFailed(f"The token service did not accept the exchange (status {status}); "
                          "tell the operator", service_fault=False)


def _transport_failure(exc: httpx.TransportError) -> ExchangeFailed:
    if isinstance(exc, httpx.TimeoutException):
        return ExchangeFailed("The token service did not answer in time; retry later")
    if isinstance(exc, httpx.ConnectError):
        return ExchangeFailed("The token service is unreachable; retry later or tell the "
                              "operator")
    return ExchangeFailed(f"The token exchange failed in transport ({type(exc).__name__}); "
                          "retry later")
