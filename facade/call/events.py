"""Call time: what one tool call did, for metrics and the audit log.

The server opens a `CallRecord` for each tool call and makes it current; the upstream
client fills in what only it knows (backend status, bytes, retries) and reports backend-wide
events (the circuit breaker) to the `Observer`. Nothing here does I/O: observers that export
metrics or write audit lines subclass `Observer`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from facade.deviations import Deviation
    from facade.tools import Facade

__all__ = ["CallRecord", "Observer", "current_call", "open_call"]


@dataclass
class CallRecord:
    """One tool call, filled in as it goes."""

    tool: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    principal: str | None = None
    started: float = field(default_factory=time.perf_counter)
    # ok | invalid_arguments | refused | rejected | forbidden | error | cancelled |
    # backend_error | timeout | busy | ... (README, "Audit log")
    outcome: str = "ok"
    backend_status: int | None = None
    response_bytes: int = 0
    retries: int = 0
    arguments: dict[str, object] | None = None  # only what the curation lets the audit log see
    deviations: int = 0  # distinct (path, kind) deviations of the answer from its schema
    trace_id: str | None = None  # 32 hex digits, while the call is traced (facade.call.tracing)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


current_call: ContextVar[CallRecord | None] = ContextVar("facade_call", default=None)


@contextlib.contextmanager
def open_call(record: CallRecord) -> Iterator[CallRecord]:
    token = current_call.set(record)
    try:
        yield record
    finally:
        current_call.reset(token)


class Observer:
    """Hooks the call path reports to. The base class ignores everything."""

    async def admit(self, record: CallRecord) -> None:
        """A tool call arrived (its arguments not yet checked: a call refused for bad
        arguments still counts toward a rate limit). May refuse it with a `ToolError`; may
        wait for I/O (a rate limit shared through Redis)."""

    def call_started(self, record: CallRecord) -> None:
        """A tool call was admitted and starts. May refuse it with a `ToolError`."""

    def call_finished(self, record: CallRecord) -> None:
        """A tool call ended, in any way; `record.outcome` says how."""

    def backend_response(self, tool: str, status: int, seconds: float) -> None:
        """The backend answered one attempt (retries report once each)."""

    def response_deviations(self, tool: str, found: Sequence[Deviation]) -> None:
        """The backend's answer deviated from its documented schema, in each of `found`
        ways (distinct paths and kinds; types, never values)."""

    def retry(self, tool: str, reason: str) -> None:
        """An attempt failed with `reason` (e.g. "503", "connect") and will be retried."""

    def breaker_changed(self, backend: str, state: str) -> None:
        """The circuit breaker moved to `state`: "closed", "open" or "half_open"."""

    def token_exchange(self, backend: str, outcome: str) -> None:
        """A token exchange for `backend` ended: "ok", "refused", "failed" or "unavailable"
        (breaker open). Cached tokens are not exchanges."""

    def facade_changed(self, facade: Facade) -> None:
        """`serve --watch` swapped in a new version of the curation."""

    def rate_limit_store_changed(self, up: bool) -> None:
        """The shared rate limit's store became reachable (`up`) or unreachable."""

    def rate_limit_store_failed(self, reason: str) -> None:
        """One check of the shared rate limit's store failed: "timeout", "connection" or
        "error"."""

    async def aclose(self) -> None:
        """The server is stopping: release connections the observer holds."""
