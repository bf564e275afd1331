"""Call time: send an encoded request to the backend and turn the answer into a result.

This is the only module that talks to httpx. Every failure becomes an `UpstreamError` (a
fastmcp `ToolError`) whose message is written for the model that called the tool: what
failed, for which operation, and what to try. Backend bodies (unless the curation allows a
redacted excerpt), URLs and credentials never appear in those messages.

One call, in order:

    circuit breaker → concurrency limit → deadline {
        attempt → retry on connect errors / 429 / 502 / 503 / 504 (idempotent only)
    } → status → capped body

Exceptions raised to the server (all `ToolError`):

    UpstreamError            outcome "backend_error": transport failure, status >= 400
    ├── BackendBusy          outcome "busy": `max_concurrency` calls already in flight
    ├── BackendUnavailable   outcome "unavailable": the circuit breaker is open
    ├── RateLimited          outcome "rate_limited": 429/503 with a Retry-After too long
    └── DeadlineExceeded     outcome "timeout": a timeout, or the call's deadline passed
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import json
import logging
import os
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from fastmcp.exceptions import ToolError

from facade.encoding import EncodedRequest
from facade.events import CallRecord, Observer, current_call
from facade.scrub import register_secrets, scrub
from facade.shaping import Shaper
from facade.tools import BackendSettings, ToolDefinition

__all__ = ["BackendBusy", "BackendResponse", "BackendUnavailable", "CircuitBreaker",
           "DeadlineExceeded", "MissingCredentialError", "RateLimited", "Upstream",
           "UpstreamError", "map_upstream_errors"]

logger = logging.getLogger("facade.upstream")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_ERROR_BODY_LIMIT = 64 * 1024  # an error body is read this far, for an excerpt at most

_STATUS_HINTS = {
    400: "the backend rejected the arguments; check them against the tool's schema",
    401: "the façade's backend credentials were refused; the operator must fix them",
    403: "the façade is not allowed to do this; the operator must grant access",
    404: "nothing found; check the identifier",
    409: "conflict with the current state; read it again before retrying",
    422: "the backend rejected the arguments; check them against the tool's schema",
    429: "rate limited by the backend; retry later",
}


class MissingCredentialError(Exception):
    """An env var named by `backend.auth` is not set (raised when the server starts)."""


class UpstreamError(ToolError):
    outcome = "backend_error"


class BackendBusy(UpstreamError):
    outcome = "busy"


class BackendUnavailable(UpstreamError):
    outcome = "unavailable"


class RateLimited(UpstreamError):
    outcome = "rate_limited"


class DeadlineExceeded(UpstreamError):
    outcome = "timeout"


def _hint(status: int) -> str:
    if status in _STATUS_HINTS:
        return _STATUS_HINTS[status]
    if status >= 500:
        return "the backend failed; retry later"
    return "the request was not accepted"


def _label(tool: ToolDefinition) -> str:
    return f"{tool.binding.method} {tool.binding.path}"


@contextlib.contextmanager
def map_upstream_errors(tool: ToolDefinition, timeout: float | httpx.Timeout
                        ) -> Iterator[None]:
    """Translate httpx's transport failures into `UpstreamError`s, most specific first."""
    label = _label(tool)
    try:
        yield
    except httpx.TimeoutException as exc:
        kind = type(exc).__name__.removesuffix("Timeout").lower() or "request"
        seconds = getattr(timeout, kind, None) if isinstance(timeout, httpx.Timeout) \
            else timeout
        after = f" after {seconds:g}s" if isinstance(seconds, (int, float)) else ""
        raise DeadlineExceeded(f"The backend did not answer {label} in time ({kind} "
                               f"timeout{after}); retry later") from exc
    except httpx.ConnectError as exc:
        raise UpstreamError(f"The backend for {label} is unreachable; retry later or tell "
                            "the operator") from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise UpstreamError(f"The backend broke the connection during {label}; retry later"
                            ) from exc
    except httpx.DecodingError as exc:
        raise UpstreamError(f"The backend's answer to {label} could not be decoded") from exc
    except httpx.TransportError as exc:
        raise UpstreamError(f"The request {label} failed in transport "
                            f"({type(exc).__name__}); retry later") from exc


@dataclass(frozen=True)
class BackendResponse:
    status: int
    media_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""


def resolve_credentials(backend: BackendSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The auth headers to send, read from the environment once, at server start."""
    auth = backend.auth
    if not auth:
        return {}

    def need(key: str) -> str:
        name = auth[key]
        value = environ.get(name)
        if not value:
            raise MissingCredentialError(
                f"backend.auth.{key}: environment variable {name!r} is not set")
        return value

    if "bearer_env" in auth:
        token = need("bearer_env")
        register_secrets([token])
        return {"Authorization": f"Bearer {token}"}
    if "api_key_env" in auth:
        key = need("api_key_env")
        register_secrets([key])
        return {auth.get("header", "X-Api-Key"): key}
    user, password = need("basic_user_env"), need("basic_password_env")
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    register_secrets([password, encoded])
    return {"Authorization": "Basic " + encoded}


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class CircuitBreaker:
    """Closed → (``failures`` failed calls in a row) → open → (``reset_after``) → half open:
    one probe call; its success closes the breaker, its failure opens it again."""

    def __init__(self, failures: int, reset_after: float, *,
                 on_change: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.reset_after = failures, reset_after
        self._on_change, self._clock = on_change, clock
        self._count, self._opened_at, self._probing = 0, 0.0, False
        self.state = "closed"

    def _move(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)

    def retry_in(self) -> float | None:
        """None when a call may go ahead (and is then the probe, if half open);
        otherwise the seconds until the next probe."""
        if self.state == "open":
            wait = self._opened_at + self.reset_after - self._clock()
            if wait > 0:
                return wait
            self._move("half_open")
        if self.state == "half_open":
            if self._probing:
                return self.reset_after
            self._probing = True
        return None

    def record(self, success: bool | None) -> None:
        """The outcome of a call let through; None (cancelled) only ends a probe."""
        self._probing = False
        if success is None:
            return
        if success:
            self._count = 0
            self._move("closed")
            return
        self._count += 1
        if self.state == "half_open" or self._count >= self.failures:
            self._opened_at = self._clock()
            self._move("open")


Sleep = Callable[[float], Awaitable[None]]


class Upstream:
    """One backend: a shared `httpx.AsyncClient`, its credentials, and the policies that
    keep a faulty backend from hurting the façade (deadline, retries, breaker, limit)."""

    def __init__(self, backend: BackendSettings, *, environ: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 observer: Observer | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.backend = backend
        self.observer = observer or Observer()
        self._credentials = resolve_credentials(backend, os.environ if environ is None
                                                else environ)
        self._transport = transport
        self._sleep = sleep
        self.breaker = CircuitBreaker(
            backend.breaker_failures, backend.breaker_reset_after,
            on_change=lambda state: self.observer.breaker_changed(backend.base_url, state))
        self.in_flight = 0
        base = urlsplit(backend.base_url + "/")
        self._origin = (base.scheme, base.hostname, base.port)
        self._base_path = base.path
        self._redactor = Shaper.build(None, list(backend.redact), None)
        self.client = self._open()

    @property
    def breaker_state(self) -> str:
        return self.breaker.state

    @property
    def is_open_client(self) -> bool:
        return not self.client.is_closed

    def _open(self) -> httpx.AsyncClient:
        b = self.backend
        return httpx.AsyncClient(
            base_url=b.base_url + "/",
            timeout=httpx.Timeout(connect=min(b.connect_timeout, b.timeout),
                                  read=min(b.read_timeout, b.timeout),
                                  write=min(b.write_timeout, b.timeout),
                                  pool=min(b.pool_timeout, b.timeout)),
            limits=httpx.Limits(max_connections=b.max_concurrency,
                                max_keepalive_connections=b.max_concurrency),
            follow_redirects=False,
            transport=self._transport,
            trust_env=False,  # proxies come from the operator's config, not ambient env
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, tool: ToolDefinition, req: EncodedRequest,
                   forwarded: Mapping[str, str] | None = None) -> BackendResponse:
        """One call: concurrency limit, breaker and deadline around the attempts."""
        request = self._build(tool, req, forwarded)
        if self.in_flight >= self.backend.max_concurrency:
            raise BackendBusy(f"The backend for {_label(tool)} is busy: "
                              f"{self.backend.max_concurrency} calls are already in flight; "
                              "retry in a moment")
        wait = self.breaker.retry_in()
        if wait is not None:
            raise BackendUnavailable(
                f"The backend for {_label(tool)} is failing, so facade is not calling it for "
                f"now (circuit breaker open); retry in {max(1, round(wait))} s")
        self.in_flight += 1
        success: bool | None = None  # None: the call was cancelled, which says nothing
        try:
            try:
                response = await self._within_deadline(tool, request)
            except UpstreamError:
                success = False
                raise
            success = response.status < 500 and response.status != 429
            _raise_for_status(tool, response, self._excerpt(response))
            return response
        finally:
            self.in_flight -= 1
            self.breaker.record(success)

    def _build(self, tool: ToolDefinition, req: EncodedRequest,
               forwarded: Mapping[str, str] | None) -> httpx.Request:
        headers = httpx.Headers(forwarded or {})
        for source in (req.headers, self.backend.headers, self._credentials):
            for name, value in source.items():  # later sources win: credentials last
                headers[name] = value
        if "accept" not in headers:
            headers["Accept"] = "application/json, text/*;q=0.5"
        headers["Accept-Encoding"] = "gzip, deflate"  # what _read_capped can inflate
        record = current_call.get()
        if record is not None:
            headers["X-Request-Id"] = record.request_id
        if self.client.is_closed:  # the server's lifespan ended and a new one began
            self.client = self._open()
        query: list[tuple[str, str | int | float | bool | None]] = list(req.query)
        request = self.client.build_request(
            req.method, req.path.lstrip("/"), params=query, headers=headers,
            json=req.json_body if req.form_body is None and req.has_body else None,
            data=req.form_body,
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
            logger.error("refused a request for tool %s outside the backend's base URL",
                         tool.name)
            raise UpstreamError(f"Refused to call {_label(tool)}: the arguments would send the "
                                "request outside the configured backend")

    async def _within_deadline(self, tool: ToolDefinition, request: httpx.Request
                               ) -> BackendResponse:
        deadline = self.backend.timeout
        try:
            async with asyncio.timeout(deadline):
                return await self._attempts(tool, request, time.monotonic() + deadline)
        except TimeoutError as exc:
            raise DeadlineExceeded(f"The backend did not finish answering {_label(tool)} "
                                   f"within the {deadline:g} s deadline; retry later, or "
                                   "narrow the request") from exc

    async def _attempts(self, tool: ToolDefinition, request: httpx.Request, deadline: float
                        ) -> BackendResponse:
        record = current_call.get()
        retries = self.backend.retry_attempts if tool.binding.method in IDEMPOTENT_METHODS \
            else 0
        for attempt in range(retries + 1):
            last = attempt == retries
            started = time.perf_counter()
            try:
                with map_upstream_errors(tool, self.client.timeout):
                    response = await self._attempt(tool, request)
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
                raise RateLimited(f"The backend is {what} for {_label(tool)} (status "
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
            raise DeadlineExceeded(f"The backend kept failing for {_label(tool)} "
                                   f"({reason}) until the {self.backend.timeout:g} s deadline; "
                                   "retry later")
        self.observer.retry(tool.name, reason)
        if record is not None:
            record.retries += 1
        logger.info("retrying %s for tool %s after %s (wait %.2fs)", _label(tool), tool.name,
                    reason, wait)
        await self._sleep(wait)

    async def _attempt(self, tool: ToolDefinition, request: httpx.Request
                       ) -> BackendResponse:
        response = await self.client.send(request, stream=True)
        try:
            status = response.status_code
            if 300 <= status < 400 or status in RETRY_STATUSES and not self.backend.error_excerpt:
                body = b""
            elif status >= 400:
                body = await _read_capped(response, _ERROR_BODY_LIMIT, tool, truncate=True)
            else:
                body = await _read_capped(response, tool.max_response_bytes or
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


def _decompressor(response: httpx.Response, tool: ToolDefinition) -> Any:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by its header
    raise UpstreamError(f"The backend's answer to {_label(tool)} uses content encoding "
                        f"{encoding[:40]!r}, which facade does not accept")


def _inflate(decompressor: Any, raw: bytes, budget: int) -> Iterator[bytes]:
    """Decompress `raw` in pieces of at most `budget` + 1 bytes, so that a compression
    bomb never expands in memory past the cap."""
    data = raw
    while data:
        piece = decompressor.decompress(data, budget + 1)
        if piece:
            yield piece
        data = decompressor.unconsumed_tail
        if not piece and not data:
            return


async def _read_capped(response: httpx.Response, limit: int, tool: ToolDefinition,
                       truncate: bool = False) -> bytes:
    """The decoded body, refused (or cut, for error bodies) past `limit` bytes. Memory
    stays near `limit`: compressed bodies are inflated piece by piece, here."""
    if response.is_stream_consumed:  # an in-memory transport read (and decoded) it already
        body = response.content
        if len(body) > limit and not truncate:
            raise UpstreamError(f"The backend's answer to {_label(tool)} is larger than "
                                f"{limit:,} bytes; narrow the request (filters, a smaller "
                                "page)")
        return body[:limit]
    decompressor = _decompressor(response, tool)
    chunks: list[bytes] = []
    size = 0
    try:
        async for raw in response.aiter_raw():
            pieces = [raw] if decompressor is None else _inflate(decompressor, raw,
                                                                 limit - size)
            for chunk in pieces:
                size += len(chunk)
                if size > limit:
                    if truncate:
                        chunks.append(chunk[:limit - size + len(chunk)])
                        return b"".join(chunks)
                    raise UpstreamError(
                        f"The backend's answer to {_label(tool)} is larger than {limit:,} "
                        "bytes; narrow the request (filters, a smaller page)")
                chunks.append(chunk)
    except zlib.error as exc:
        raise UpstreamError(f"The backend's answer to {_label(tool)} could not be "
                            "decompressed") from exc
    return b"".join(chunks)


def _raise_for_status(tool: ToolDefinition, response: BackendResponse, excerpt: str | None
                      ) -> None:
    status = response.status
    label = _label(tool)
    if 300 <= status < 400:
        raise UpstreamError(f"The backend answered {label} with a {status} redirect, which "
                            "facade does not follow; tell the operator")
    if status >= 400:
        reason = response.reason
        logger.info("backend answered %s %s for tool %s", status, reason, tool.name)
        said = f" The backend said: {excerpt}" if excerpt else ""
        raise UpstreamError(f"The backend answered {status} {reason} for {label} (tool "
                            f"{tool.name}): {_hint(status)}.{said}".replace("  ", " "))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # RFC 8259 has no NaN or Infinity


def decode_json(tool: ToolDefinition, body: bytes, max_depth: int = 64,
                max_items: int = 200_000) -> Any:
    """Parse a JSON answer, refusing documents nested or sized beyond the caps."""
    if not body.strip():
        return None
    label = _label(tool)
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise UpstreamError(f"The backend's answer to {label} is nested deeper than "
                            f"{max_depth} levels") from None
    except ValueError as exc:
        raise UpstreamError(f"The backend's answer to {label} is not valid JSON") from exc
    count, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > max_depth:
            raise UpstreamError(f"The backend's answer to {label} is nested deeper than "
                                f"{max_depth} levels")
        if count > max_items:
            raise UpstreamError(f"The backend's answer to {label} has more than "
                                f"{max_items:,} values; narrow the request")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return data
