"""Call time: the audit log, and the chain of `Observer`s `facade serve` hands the server.

`Observers` fans one event out to several observers, so `facade serve` can hand the server a
single observer made of the rate limiter, the metrics (`facade.serve.metrics`) and the audit
log.

    RateLimiter.admit           → may refuse the call with a `ToolError` (outcome "rejected"):
                                  in memory (`facade.serve.ratelimit`), or shared by the
                                  replicas through Redis (`facade.serve.shared_limit`)
    AuditLog.call_finished      → one record per call on the `facade.audit` logger, with the
                                  call's fields (one JSON line on stderr: `facade.serve.logs`)
    BreakerLog.breaker_changed  → one line each time a backend's circuit breaker moves
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from facade.call.events import CallRecord, Observer
from facade.call.scrub import scrub_data
from facade.deviations import Deviation
from facade.serve.ratelimit import ANONYMOUS, RateLimiter
from facade.serve.shared_limit import SharedRateLimiter
from facade.tools import Facade

__all__ = ["ANONYMOUS", "AuditLog", "BreakerLog", "Observers", "RateLimiter", "observers_for"]

logger = logging.getLogger("facade.observe")
breaker_logger = logging.getLogger("facade.breaker")
audit_logger = logging.getLogger("facade.audit")  # facade.serve.logs keeps it at every level


class Observers(Observer):
    """Several observers as one. `admit` and `call_started` stop at the first refusal; the
    other hooks reach every observer, and one that fails is logged without failing the call."""

    def __init__(self, observers: Iterable[Observer]) -> None:
        self.observers = tuple(observers)

    async def admit(self, record: CallRecord) -> None:
        for observer in self.observers:
            await observer.admit(record)

    def call_started(self, record: CallRecord) -> None:
        for observer in self.observers:
            observer.call_started(record)

    def call_finished(self, record: CallRecord) -> None:
        self._each(lambda o: o.call_finished(record))

    def backend_response(self, tool: str, status: int, seconds: float) -> None:
        self._each(lambda o: o.backend_response(tool, status, seconds))

    def response_deviations(self, tool: str, found: Sequence[Deviation]) -> None:
        self._each(lambda o: o.response_deviations(tool, found))

    def retry(self, tool: str, reason: str) -> None:
        self._each(lambda o: o.retry(tool, reason))

    def breaker_changed(self, backend: str, state: str) -> None:
        self._each(lambda o: o.breaker_changed(backend, state))

    def token_exchange(self, backend: str, outcome: str) -> None:
        self._each(lambda o: o.token_exchange(backend, outcome))

    def facade_changed(self, facade: Facade) -> None:
        self._each(lambda o: o.facade_changed(facade))

    def rate_limit_store_changed(self, up: bool) -> None:
        self._each(lambda o: o.rate_limit_store_changed(up))

    def rate_limit_store_failed(self, reason: str) -> None:
        self._each(lambda o: o.rate_limit_store_failed(reason))

    async def aclose(self) -> None:
        for observer in self.observers:
            try:
                await observer.aclose()
            except Exception:  # closing one must not keep the others open
                logger.exception("observer %s failed to close", type(observer).__name__)

    def _each(self, event: Callable[[Observer], None]) -> None:
        for observer in self.observers:
            try:
                event(observer)
            except Exception:  # an observer's fault must not become the caller's
                logger.exception("observer %s failed", type(observer).__name__)


class AuditLog(Observer):
    """One record per tool call, its fields a flat dict (`extra={"fields": …}`) that the log
    formatter turns into one JSON line. Argument values appear only for the names in
    `audit_args[tool]` (the curation's `audit_args`); registered secrets are masked. A
    worker of `serve --workers N` adds its number, `worker`."""

    def __init__(self, audit_args: dict[str, frozenset[str]] | None = None,
                 worker: int | None = None) -> None:
        self.audit_args = audit_args or {}
        self.worker = worker

    def facade_changed(self, facade: Facade) -> None:
        self.audit_args = audit_args_of(facade)

    def call_finished(self, record: CallRecord) -> None:
        allowed = self.audit_args.get(record.tool, frozenset())
        entry: dict[str, object] = {
            "event": "tool_call",
            "request_id": record.request_id,
            "principal": record.principal or ANONYMOUS,
            "tool": record.tool,
            "outcome": record.outcome,
            "backend_status": record.backend_status,
            "latency_ms": round(record.elapsed * 1000, 1),
            "bytes": record.response_bytes,
            "retries": record.retries,
        }
        if record.deviations:
            entry["deviations"] = record.deviations
        if record.trace_id is not None:  # joins the line to the call's trace
            entry["trace_id"] = record.trace_id
        if self.worker is not None:
            entry["worker"] = self.worker
        arguments = {k: v for k, v in (record.arguments or {}).items() if k in allowed}
        if arguments:  # masked here too: a handler other than facade's may write them
            entry["arguments"] = scrub_data(arguments)
        audit_logger.info("tool_call", extra={"fields": entry})


class BreakerLog(Observer):
    """One line each time a backend's circuit breaker moves: during an outage the log
    says when calls stopped reaching the backend, and when they reach it again."""

    def breaker_changed(self, backend: str, state: str) -> None:
        level = logging.WARNING if state == "open" else logging.INFO
        breaker_logger.log(level, "circuit breaker for %s is %s", backend, state,
                           extra={"fields": {"backend": backend, "state": state}})


def audit_args_of(facade: Facade) -> dict[str, frozenset[str]]:
    return {t.name: frozenset(t.audit_arguments)
            for t in (*facade.tools, *(r.tool for r in facade.resources))}


def observers_for(facade: Facade, *more: Observer, worker: int | None = None) -> Observers:
    """What `facade serve` observes calls with: the rate limit (if any) first, so a refused
    call starts nothing else, then `more` (metrics), the breaker's log, the audit log (of
    `worker`, with `--workers N`). A rate limit with a `store` reports the store's state to
    `more`.

    Raises:
        RedisMissing: the rate limit has a store, and the `redis` extra is not installed.
    """
    limit = facade.serving.rate_limit
    chain: list[Observer] = []
    if limit is not None and limit.store is not None:
        chain.append(SharedRateLimiter(limit, limit.store, facade.name, Observers(more)))
    elif limit is not None:
        chain.append(RateLimiter(limit.per_minute, limit.burst))
    audit = AuditLog(audit_args_of(facade), worker=worker)
    return Observers([*chain, *more, BreakerLog(), audit])
