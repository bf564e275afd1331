"""Call time: the audit log and the per-principal rate limit, as `Observer`s.

`Observers` fans one event out to several observers, so `facade serve` can hand the server a
single observer made of the audit log, the rate limiter and the metrics (`facade.serve.metrics`).

    RateLimiter.call_started  → may refuse the call with a `ToolError` (outcome "rejected")
    AuditLog.call_finished    → one JSON line per call on stderr
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import TextIO

from fastmcp.exceptions import ToolError

from facade.call.events import CallRecord, Observer
from facade.call.scrub import scrub
from facade.deviations import Deviation
from facade.tools import Facade

__all__ = ["ANONYMOUS", "AuditLog", "Observers", "RateLimiter", "observers_for"]

logger = logging.getLogger("facade.observe")
ANONYMOUS = "anonymous"  # the principal of calls without an access token (stdio, no auth)


class Observers(Observer):
    """Several observers as one. `call_started` stops at the first refusal; the other hooks
    reach every observer, and one that fails is logged without failing the call."""

    def __init__(self, observers: Iterable[Observer]) -> None:
        self.observers = tuple(observers)

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

    def _each(self, event: Callable[[Observer], None]) -> None:
        for observer in self.observers:
            try:
                event(observer)
            except Exception:  # an observer's fault must not become the caller's
                logger.exception("observer %s failed", type(observer).__name__)


class AuditLog(Observer):
    """One JSON line per tool call. Argument values appear only for the names in
    `audit_args[tool]` (the curation's `audit_args`); registered secrets are masked. A
    worker of `serve --workers N` adds its number, `worker`."""

    def __init__(self, audit_args: dict[str, frozenset[str]] | None = None,
                 stream: TextIO | None = None, worker: int | None = None) -> None:
        self.audit_args = audit_args or {}
        self._stream = stream
        self.worker = worker

    def facade_changed(self, facade: Facade) -> None:
        self.audit_args = audit_args_of(facade)

    def call_finished(self, record: CallRecord) -> None:
        allowed = self.audit_args.get(record.tool, frozenset())
        entry: dict[str, object] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
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
        if self.worker is not None:
            entry["worker"] = self.worker
        arguments = {k: v for k, v in (record.arguments or {}).items() if k in allowed}
        if arguments:
            entry["arguments"] = arguments
        line = scrub(json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":")))
        stream = self._stream or sys.stderr  # looked up late: tests and daemons swap it
        stream.write(line + "\n")
        stream.flush()


class RateLimiter(Observer):
    """A token bucket per principal: `burst` calls at once, refilled at `per_minute`.

    Buckets of principals that stopped calling are dropped once full again, and at most
    `max_principals` are kept (the least recently seen go first), so memory stays bounded.
    """

    def __init__(self, per_minute: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic,
                 max_principals: int = 10_000) -> None:
        self.per_minute, self.burst = per_minute, burst
        self._rate = per_minute / 60.0
        self._clock = clock
        self._max = max_principals
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def call_started(self, record: CallRecord) -> None:
        wait = self.take(record.principal or ANONYMOUS)
        if wait is not None:
            raise ToolError(
                f"Rate limit exceeded: at most {self.per_minute:g} tool calls per minute "
                f"(bursts of {self.burst}) per client; retry in {max(1, round(wait))} s")

    def take(self, principal: str) -> float | None:
        """Spend one token; None when granted, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.pop(principal, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self._rate)
        granted = tokens >= 1.0
        self._buckets[principal] = (tokens - 1.0 if granted else tokens, now)
        if len(self._buckets) > self._max:
            self._prune(now)
        return None if granted else (1.0 - tokens) / self._rate

    def _prune(self, now: float) -> None:
        for name, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self._rate >= self.burst:
                del self._buckets[name]
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


def audit_args_of(facade: Facade) -> dict[str, frozenset[str]]:
    return {t.name: frozenset(t.audit_arguments)
            for t in (*facade.tools, *(r.tool for r in facade.resources))}


def observers_for(facade: Facade, *more: Observer, worker: int | None = None) -> Observers:
    """What `facade serve` observes calls with: the rate limit (if any) first, so a refused
    call starts nothing else, then `more` (metrics), then the audit log (of `worker`, with
    `--workers N`)."""
    limit = facade.serving.rate_limit
    chain: list[Observer] = [RateLimiter(limit.per_minute, limit.burst)] if limit else []
    audit = AuditLog(audit_args_of(facade), worker=worker)
    return Observers([*chain, *more, audit])
