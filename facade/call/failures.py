"""Call time: how a backend call fails, as errors written for the model.

Exceptions raised to the server (all fastmcp `ToolError`s, so their message reaches the
client even with error details masked):

    UpstreamError            outcome "backend_error": transport failure, status >= 400
    ├── BackendBusy          outcome "busy": no backend slot (`max_concurrency`) freed up in time
    ├── BackendUnavailable   outcome "unavailable": the circuit breaker is open
    ├── RateLimited          outcome "rate_limited": 429/503 with a Retry-After too long
    └── DeadlineExceeded     outcome "timeout": a timeout, or the call's deadline passed

`transport_failure` is the one place httpx's exceptions are translated, most specific
first, with a test that every `httpx.TransportError` is covered.
"""

from __future__ import annotations

import logging

import httpx
from fastmcp.exceptions import ToolError

from facade.tools import ToolDefinition

__all__ = ["BackendBusy", "BackendUnavailable", "DeadlineExceeded", "MissingCredentialError",
           "RateLimited", "UpstreamError", "backend_fault", "hint", "label",
           "raise_for_status", "transport_failure"]

logger = logging.getLogger("facade.upstream")  # the call's story, in one logger

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


# When the façade sends the backend no credentials at all, "refused" would mislead.
_NO_CREDENTIALS_HINTS = {
    401: "the backend wants credentials and the façade has none configured; the operator "
         "must set backend.auth in the curation",
    403: "the backend refused access, and the façade sends it no credentials; the operator "
         "may need to set backend.auth in the curation",
}


def hint(status: int, credentials: bool = True) -> str:
    """What a status means for the model; `credentials`: whether the façade sent any."""
    if not credentials and status in _NO_CREDENTIALS_HINTS:
        return _NO_CREDENTIALS_HINTS[status]
    if status in _STATUS_HINTS:
        return _STATUS_HINTS[status]
    if status >= 500:
        return "the backend failed; retry later"
    return "the request was not accepted"


def label(tool: ToolDefinition) -> str:
    """The operation in a message for the model: its arguments under the names the agent
    knows (`GET /items/{sku}`, not the spec's `{itemId}`)."""
    return tool.binding.agent_label


def transport_failure(tool: ToolDefinition, timeout: float | httpx.Timeout,
                      exc: httpx.TransportError) -> UpstreamError:
    """httpx's transport failure `exc` as the `UpstreamError` to raise from it, most
    specific first."""
    what = label(tool)
    if isinstance(exc, httpx.ConnectTimeout):
        seconds = timeout.connect if isinstance(timeout, httpx.Timeout) else timeout
        after = f" after {seconds:g}s" if isinstance(seconds, (int, float)) else ""
        return DeadlineExceeded(f"The backend for {what} did not accept a connection in time "
                                f"(connect timeout{after}); retry later or tell the "
                                "operator")
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.removesuffix("Timeout").lower() or "request"
        seconds = getattr(timeout, kind, None) if isinstance(timeout, httpx.Timeout) \
            else timeout
        after = f" after {seconds:g}s" if isinstance(seconds, (int, float)) else ""
        return DeadlineExceeded(f"The backend did not answer {what} in time ({kind} "
                                f"timeout{after}); retry later")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamError(f"The backend for {what} is unreachable; retry later or tell "
                             "the operator")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return UpstreamError(f"The backend broke the connection during {what}; retry later")
    if isinstance(exc, httpx.DecodingError):
        return UpstreamError(f"The backend's answer to {what} could not be decoded")
    return UpstreamError(f"The request {what} failed in transport "
                         f"({type(exc).__name__}); retry later")


def backend_fault(exc: UpstreamError) -> bool:
    """Whether a failed call says the backend is unwell (so it counts toward opening the
    breaker): timeouts, rate limits and transport failures do; an answer that is too big
    or malformed for this request does not."""
    return isinstance(exc, (DeadlineExceeded, RateLimited)) or \
        isinstance(exc.__cause__, httpx.TransportError)


def raise_for_status(tool: ToolDefinition, status: int, reason: str, excerpt: str | None,
                     credentials: bool = True) -> None:
    """Raise the error a redirect or an error status means for the model, if it is one;
    `credentials`: whether the façade sent the backend any."""
    what = label(tool)
    if 300 <= status < 400:
        raise UpstreamError(f"The backend answered {what} with a {status} redirect, which "
                            "facade does not follow; tell the operator")
    if status >= 400:
        # Debug: the call's audit line has the status (and its outcome).
        logger.debug("backend answered %s %s for tool %s", status, reason, tool.name)
        said = f" The backend said: {excerpt}" if excerpt else ""
        raise UpstreamError(f"The backend answered {status} {reason} for {what} (tool "
                            f"{tool.name}): {hint(status, credentials)}.{said}".replace("  ", " "))
