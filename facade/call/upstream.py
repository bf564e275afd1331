"""Call time: send an encoded request to the backend and turn the answer into a result.

This is the only module that talks to httpx. Every failure becomes an `UpstreamError` (a
fastmcp `ToolError`) whose message is written for the model that called the tool: what
failed, for which operation, and what to try. Backend bodies (unless the curation allows a
redacted excerpt), URLs and credentials never appear in those messages.

One call, in order:

    circuit breaker → deadline {
        backend slot (max_concurrency) { attempt } → retry on connect errors / 429 / 502 /
        503 / 504 (idempotent only)
    } → status → capped body

The exceptions it raises are described in `facade.call.failures`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import httpx

from facade.call.bodies import read_capped
from facade.call.credentials import ServiceCredentials
from facade.call.encoding import EncodedRequest
from facade.call.events import CallRecord, Observer, current_call
from facade.call.failures import (
    BackendBusy,
    BackendUnavailable,
    DeadlineExceeded,
    MissingCredentialError,
    RateLimited,
    UpstreamError,
    backend_fault,
    label,
    raise_for_status,
    transport_failure,
)
from facade.call.guard import BackendSlots, Progress
from facade.call.identity import CallerIdentity
from facade.call.resilience import CircuitBreaker, retry_after_seconds
from facade.call.scrub import scrub
from facade.call.tracing import Target, answered, attempt_span
from facade.shaping import Shaper
from facade.tools import BackendSettings, ToolDefinition
from facade.version import __version__

__all__ = ["BackendResponse", "MissingCredentialError", "Upstream"]

logger = logging.getLogger("facade.upstream")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_ERROR_BODY_LIMIT = 64 * 1024  # an error body is read this far, for an excerpt at most



@dataclass(frozen=True)
class BackendResponse:
    status: int
    media_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""


Sleep = Callable[[float], Awaitable[None]]
_USER_AGENT = f"facade/{__version__}"


def _refusing_tls() -> ssl.SSLContext:
    """For a plain-http backend: requests never leave its origin (`_check_target`) and
    redirects are not followed, so TLS is never spoken. This context verifies as strictly
    as the default but trusts no CA, so it would refuse any certificate; and unlike the
    default it does not load the CA bundle, which costs 20-40 ms of every start."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


_NO_TLS = _refusing_tls()


class Upstream:
    """One backend: a shared httpx connection pool, its credentials, and the policies that
    keep a faulty backend from hurting the façade (deadline, retries, breaker, limit)."""

    def __init__(self, backend: BackendSettings, *, environ: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 observer: Observer | None = None, sleep: Sleep = asyncio.sleep,
                 identity_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.backend = backend
        self.observer = observer or Observer()
        environ = os.environ if environ is None else environ
        self._credentials = ServiceCredentials(backend.auth, environ)
        # Who calls, for a backend that must know (token exchange, identity headers).
        self.identity = CallerIdentity(backend, environ, transport=identity_transport,
                                       observer=self.observer) \
            if backend.token_exchange is not None or backend.identity_headers else None
        self._given = transport
        self._sleep = sleep
        self.breaker = CircuitBreaker(
            backend.breaker_failures, backend.breaker_reset_after,
            on_change=lambda state: self.observer.breaker_changed(backend.base_url, state))
        self.slots = BackendSlots(backend.max_concurrency)
        base = urlsplit(backend.base_url + "/")
        self._origin = (base.scheme, base.hostname, base.port)
        self._base_path = base.path
        self._traced_as = Target.of(base.hostname, base.port, base.path)
        self._redactor = Shaper.build(None, list(backend.redact), None)
        self._prefix = backend.base_url + "/"
        b = backend
        self._timeout = httpx.Timeout(connect=min(b.connect_timeout, b.timeout),
                                      read=min(b.read_timeout, b.timeout),
                                      write=min(b.write_timeout, b.timeout),
                                      pool=min(b.pool_timeout, b.timeout))
        self._timeouts = self._timeout.as_dict()
        self._pool: httpx.AsyncBaseTransport | None = None
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Requests sent to the backend and not yet answered."""
        return self.slots.in_flight

    @property
    def breaker_state(self) -> str:
        return self.breaker.state

    @property
    def is_open_client(self) -> bool:
        """False once the server's lifespan has closed the pool (until a call reopens it)."""
        return not self._closed

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """The backend's connection pool, opened on first use rather than at start.

        Opening one imports httpcore and, for https, loads the CA bundle (20-60 ms
        together), which answering `initialize` and `tools/list` does not need. A pool the
        server's lifespan closed is opened anew when a later lifespan calls.

        Requests go to the transport directly, not through an `httpx.AsyncClient`: each
        one is built whole here (URL, headers, timeouts), and nothing a client adds is
        wanted: no cookie jar (one call's cookies must not reach another's), no redirects,
        no auth flow, no base-URL merging. Skipping it saves about 60 µs a call.
        """
        if self._pool is None:
            self._pool = self._given or self._open()
            self._closed = False
        return self._pool

    def _open(self) -> httpx.AsyncHTTPTransport:
        b = self.backend
        return httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=b.max_concurrency,
                                max_keepalive_connections=b.max_concurrency),
            trust_env=False,  # proxies come from the operator's config, not ambient env
            verify=True if self._origin[0] == "https" else _NO_TLS,
        )

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        self._closed = True
        if pool is not None:
            await pool.aclose()
        if self.identity is not None:
            await self.identity.aclose()

    async def send(self, tool: ToolDefinition, req: EncodedRequest,
                   forwarded: Mapping[str, str] | None = None,
                   identity: Mapping[str, str] | None = None) -> BackendResponse:
        """One call: breaker and deadline around the attempts, each of which takes one of
        the backend's `max_concurrency` slots while it is sent and answered. `identity`
        (the caller's headers, from `CallerIdentity`) is sent last, so nothing inbound or
        static can stand in for it."""
        request = self._build(tool, req, forwarded, identity)
        wait, ticket = self.breaker.admit()
        if wait is not None:
            raise BackendUnavailable(
                f"The backend for {label(tool)} is failing, so facade is not calling it for "
                f"now (circuit breaker open); retry in {max(1, round(wait))} s")
        success: bool | None = None  # None: cancelled or never sent, which says nothing
        try:
            try:
                response = await self._within_deadline(tool, request)
            except BackendBusy:
                raise
            except UpstreamError as exc:
                success = not backend_fault(exc)
                raise
            success = response.status < 500 and response.status != 429
            if response.status >= 300:  # a redirect or an error: what it means, for the model
                raise_for_status(tool, response.status, response.reason,
                                 self._excerpt(response), self.backend.sends_credentials)
            return response
        finally:
            self.breaker.record(success, ticket)

    async def _take_slot(self, tool: ToolDefinition, deadline: float, progress: Progress
                         ) -> None:
        """One of the backend's slots (`facade.call.guard`), waited for up to the pool
        timeout: only then is the call refused as busy. `self.slots.release()` gives it
        back."""
        patience = min(self._timeout.pool or 0.0, max(0.0, deadline - time.monotonic()))
        try:
            await self.slots.acquire(patience)
        except TimeoutError:
            raise BackendBusy(
                f"The backend for {label(tool)} is busy: {self.backend.max_concurrency} "
                f"requests to it stayed under way for {patience:.2g} s; retry in a moment"
                ) from None
        progress.slotted()

    def _build(self, tool: ToolDefinition, req: EncodedRequest,
               forwarded: Mapping[str, str] | None,
               identity: Mapping[str, str] | None = None) -> httpx.Request:
        headers = httpx.Headers(forwarded or {})
        credentials = self._credentials.headers()
        if identity:
            credentials = {**credentials, **identity}
        for source in (req.headers, self.backend.headers, credentials):
            for name, value in source.items():  # later sources win: credentials last
                headers[name] = value
        if "accept" not in headers:
            headers["Accept"] = "application/json, text/*;q=0.5"
        headers["Accept-Encoding"] = "gzip, deflate"  # what read_capped can inflate
        headers.setdefault("User-Agent", _USER_AGENT)
        record = current_call.get()
        if record is not None:
            headers["X-Request-Id"] = record.request_id
        if "://" in req.path or req.path.startswith("//"):
            raise self._outside(tool)
        # Built whole here and sent to the transport as it is (see `transport`).
        query: list[tuple[str, str | int | float | bool | None]] = list(req.query)
        request = httpx.Request(
            req.method, self._prefix + req.path.lstrip("/"), params=query or None,
            headers=headers,
            json=req.json_body if req.form_body is None and req.has_body else None,
            data=req.form_body, extensions={"timeout": self._timeouts},
        )
        self._check_target(tool, request.url)
        return request

    def _check_target(self, tool: ToolDefinition, url: httpx.URL) -> None:
        """Whatever the arguments were, the request goes to the configured origin, under
        the configured base path, with no dot segment: or it is not sent."""
        path = url.raw_path.split(b"?", 1)[0].decode("ascii")
        segments = unquote(path).split("/")
        if (url.scheme, url.host, url.port) != self._origin or \
                not path.startswith(self._base_path) or \
                any(s in (".", "..") for s in segments):
            raise self._outside(tool)

    def _outside(self, tool: ToolDefinition) -> UpstreamError:
        logger.error("refused a request for tool %s outside the backend's base URL", tool.name)
        return UpstreamError(f"Refused to call {label(tool)}: the arguments would send the "
                             "request outside the configured backend")

    async def _within_deadline(self, tool: ToolDefinition, request: httpx.Request
                               ) -> BackendResponse:
        deadline = self.backend.timeout
        progress = Progress()
        request.extensions["trace"] = progress.trace
        try:
            async with asyncio.timeout(deadline):
                return await self._attempts(tool, request, time.monotonic() + deadline, progress)
        except TimeoutError as exc:
            what = label(tool)
            if progress.stage == "queued":
                raise BackendBusy(f"The backend for {what} is busy: no request to it "
                                  f"finished within the {deadline:g} s deadline; retry in a "
                                  "moment") from exc
            if progress.stage == "connecting":
                raise DeadlineExceeded(f"The backend for {what} could not be reached within "
                                       f"the {deadline:g} s deadline (connection attempts "
                                       "timed out); retry later or tell the operator") from exc
            raise DeadlineExceeded(f"The backend did not finish answering {what} within "
                                   f"the {deadline:g} s deadline; retry later, or narrow "
                                   "the request") from exc

    async def _attempts(self, tool: ToolDefinition, request: httpx.Request, deadline: float,
                        progress: Progress) -> BackendResponse:
        record = current_call.get()
        retries = self.backend.retry_attempts if tool.binding.method in IDEMPOTENT_METHODS \
            else 0
        for attempt in range(retries + 1):
            last = attempt == retries
            started = time.perf_counter()
            try:
                await self._take_slot(tool, deadline, progress)
                try:
                    with attempt_span(tool, attempt, request.headers, self._traced_as) as span:
                        response = await self._attempt(tool, request)
                        answered(span, response.status)
                except httpx.TransportError as exc:
                    raise transport_failure(tool, self._timeout, exc) from exc
                finally:
                    self.slots.release()
            except UpstreamError as exc:
                connect_error = isinstance(exc.__cause__, (httpx.ConnectError,
                                                           httpx.ConnectTimeout))
                if last or not connect_error:
                    raise
                await self._back_off(tool, record, attempt, deadline, "connect")
                continue
            self.observer.backend_response(tool.name, response.status,
                                           time.perf_counter() - started)
            if record is not None:
                record.backend_status = response.status
                record.response_bytes = len(response.body)
            if response.status not in RETRY_STATUSES:
                return response
            after = retry_after_seconds(response.headers.get("retry-after"))
            remaining = deadline - time.monotonic()
            if after is not None and (last or after >= remaining):
                what = "rate limited" if response.status == 429 else "unavailable"
                raise RateLimited(f"The backend is {what} for {label(tool)} (status "
                                  f"{response.status}); retry after {max(1, round(after))} s")
            if last:
                return response
            await self._back_off(tool, record, attempt, deadline, str(response.status),
                                 wait=after)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _back_off(self, tool: ToolDefinition, record: CallRecord | None, attempt: int,
                        deadline: float, reason: str, wait: float | None = None) -> None:
        if wait is None:  # exponential backoff with full jitter
            b = self.backend
            wait = random.uniform(0, min(b.retry_max_backoff, b.retry_backoff * 2 ** attempt))
        if time.monotonic() + wait >= deadline:
            raise DeadlineExceeded(f"The backend kept failing for {label(tool)} "
                                   f"({reason}) until the {self.backend.timeout:g} s deadline; "
                                   "retry later")
        self.observer.retry(tool.name, reason)
        if record is not None:
            record.retries += 1
        # Debug: the call's audit line counts its retries; an outage would double the log.
        logger.debug("retrying %s for tool %s after %s (wait %.2fs)", label(tool), tool.name,
                     reason, wait)
        await self._sleep(wait)

    async def _attempt(self, tool: ToolDefinition, request: httpx.Request
                       ) -> BackendResponse:
        response = await self.transport.handle_async_request(request)
        response.request = request
        try:
            status = response.status_code
            if 300 <= status < 400 or status in RETRY_STATUSES and not self.backend.error_excerpt:
                body = b""
            elif status >= 400:
                body = await read_capped(response, _ERROR_BODY_LIMIT, tool, truncate=True)
            else:
                body = await read_capped(response, tool.max_response_bytes or
                                          self.backend.max_response_bytes, tool)
        finally:
            await response.aclose()
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        return BackendResponse(status, media_type, body, response.headers,
                               response.reason_phrase)

    def _excerpt(self, response: BackendResponse) -> str | None:
        limit = self.backend.error_excerpt
        if response.status < 400 or not limit or not response.body:
            return None
        text = response.body.decode("utf-8", errors="replace")
        if response.media_type == "application/json" or response.media_type.endswith("+json"):
            with contextlib.suppress(ValueError, RecursionError):
                text = json.dumps(self._redactor.apply(json.loads(text), []),
                                  ensure_ascii=False)
        text = scrub(" ".join(text.split()))
        return text[:limit] + ("…" if len(text) > limit else "")
