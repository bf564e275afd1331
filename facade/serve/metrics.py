"""Call time: Prometheus metrics, fed as an `Observer`, served at `/metrics`.

Each `Metrics` has its own registry, so two servers in one process (tests) do not collide.
Labels are bounded: tools come from the curation, outcomes and breaker states are fixed
sets, statuses are HTTP codes. Principals are never labels (they belong in the audit log).

    facade_tool_calls_total{tool,outcome}
    facade_tool_call_duration_seconds{tool}          histogram
    facade_tool_calls_in_flight{tool}
    facade_backend_responses_total{tool,status}
    facade_backend_response_duration_seconds{tool}   histogram, one per attempt
    facade_backend_response_bytes_total{tool}
    facade_backend_retries_total{tool,reason}
    facade_response_deviations_total{tool,kind}      kind: facade.deviations.KINDS
    facade_circuit_breaker_state{backend,facade_circuit_breaker_state}   enum
    facade_requests_shed_total                       HTTP requests answered 503 (overload)
    facade_token_exchanges_total{backend,outcome}    ok | refused | failed | unavailable
    facade_rate_limit_store_up                       1 | 0, with `server.rate_limit.store`
    facade_rate_limit_store_errors_total{reason}     timeout | connection | error
    facade_build_info, process_*, python_*           facade.serve.runtime_metrics

With `serve --workers N` (N > 1) each worker process keeps its values in memory-mapped files
of one directory (prometheus-client's multiprocess mode) and `/metrics`, whichever worker
answers it, reads them all: counters and histograms are summed over the workers, live or
exited; the in-flight gauge is summed over live workers; the breaker, an `Enum` with one
process, becomes a gauge counting the live workers whose breaker is in each state (each
worker has its own breaker); the store's `up` is the lowest of the live workers'. Collectors
that read a process (`process_*`) are not in those files: `facade.serve.runtime_metrics`
sums them over the parent and its workers at each scrape.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

from facade.call.events import CallRecord, Observer
from facade.deviations import Deviation
from facade.serve.runtime_metrics import add_runtime_metrics

__all__ = ["CONTENT_TYPE", "Metrics", "registry_for", "use_multiprocess"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BREAKER_STATES = ["closed", "half_open", "open"]
STORE_ERRORS = ("timeout", "connection", "error")
# The `_created` series double the output and nothing alerts on them.
disable_created_metrics()  # type: ignore[no-untyped-call]


def use_multiprocess(directory: Path) -> None:
    """Make every metric created from now on in this process keep its values in
    `directory` (a worker of `serve --workers N`, right after it is forked).

    prometheus-client picks the value class once, when it is imported, from
    `PROMETHEUS_MULTIPROC_DIR`; the parent imported it before it knew how many workers it
    would fork, so the choice is made again here."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


class _WorkerFiles(multiprocess.MultiProcessCollector):
    """prometheus-client's collector of every worker's files, without its start-up race
    (prometheus/client_python#1199, open): a worker creates its file, then sizes it, and a
    read in between fails the whole merge. Workers start together, and each one's registry
    read every file when the collector registered, so a worker could die before serving
    (seen in CI). Here a file still empty has nothing recorded yet and is skipped, at any
    scrape; and registering reads nothing (`describe`)."""

    def __init__(self, registry: CollectorRegistry, directory: Path) -> None:
        self.directory = directory
        super().__init__(registry, path=str(directory))  # type: ignore[no-untyped-call]

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        files = []
        for each in self.directory.glob("*.db"):
            try:
                if each.stat().st_size > 0:  # sized once, before anything is written
                    files.append(str(each))
            except FileNotFoundError:  # removed meanwhile (a new run's clean start)
                continue
        return self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]


def registry_for(multiprocess_dir: Path | None) -> CollectorRegistry:
    """The registry `/metrics` renders: this process's own metrics register into it; or,
    across workers, only the collector that reads every worker's files (metrics are then
    created without a registry, else they would be counted twice)."""
    registry = CollectorRegistry(auto_describe=True)
    if multiprocess_dir is not None:
        _WorkerFiles(registry, multiprocess_dir)
    return registry


class Metrics(Observer):
    """Counters, histograms and gauges for every call and backend attempt."""

    def __init__(self, tools: Iterable[str] = (), backends: Iterable[str] = (),
                 multiprocess_dir: Path | None = None, *,
                 rate_limit_store: bool = False) -> None:
        """`tools` and `backends` (base URLs, one breaker each) get series from the start,
        so rates and alerts see zeros; so does the shared rate limit's store, if there is
        one (`rate_limit_store`). With `multiprocess_dir` (a worker of `serve --workers
        N`, after `use_multiprocess`), `/metrics` aggregates every worker's."""
        self.registry = registry_for(multiprocess_dir)
        r = self.registry if multiprocess_dir is None else None
        self.calls = Counter("facade_tool_calls", "Tool calls by tool and outcome.",
                             ["tool", "outcome"], registry=r)
        self.duration = Histogram("facade_tool_call_duration_seconds",
                                  "Tool call latency, validation to result.", ["tool"],
                                  buckets=_BUCKETS, registry=r)
        self.in_flight = Gauge("facade_tool_calls_in_flight", "Tool calls under way.",
                               ["tool"], registry=r, multiprocess_mode="livesum")
        self.responses = Counter("facade_backend_responses",
                                 "Backend answers by tool and HTTP status.",
                                 ["tool", "status"], registry=r)
        self.backend_duration = Histogram("facade_backend_response_duration_seconds",
                                          "Backend latency per attempt.", ["tool"],
                                          buckets=_BUCKETS, registry=r)
        self.bytes = Counter("facade_backend_response_bytes",
                             "Decoded backend response bytes.", ["tool"], registry=r)
        self.retries = Counter("facade_backend_retries", "Backend attempts retried, by reason.",
                               ["tool", "reason"], registry=r)
        self.deviations = Counter("facade_response_deviations",
                                  "Answers' deviations from the documented response schema, "
                                  "one per call for each distinct path and kind.",
                                  ["tool", "kind"], registry=r)
        self.breaker: Enum | Gauge
        if multiprocess_dir is None:
            self.breaker = Enum("facade_circuit_breaker_state", "The backend's circuit "
                                "breaker.", ["backend"], states=BREAKER_STATES, registry=r)
        else:  # Enum has no multiprocess mode: count the workers in each state
            self.breaker = Gauge("facade_circuit_breaker_state", "Workers whose circuit "
                                 "breaker for the backend is in each state.",
                                 ["backend", "facade_circuit_breaker_state"], registry=None,
                                 multiprocess_mode="livesum")
        self.shed_requests = Counter("facade_requests_shed",
                                     "HTTP requests answered 503 because this replica had "
                                     "server.limits.max_in_flight under way.", registry=r)
        self.exchanges = Counter("facade_token_exchanges", "Token exchanges (RFC 8693) by "
                                 "backend and outcome.", ["backend", "outcome"], registry=r)
        self.store_up: Gauge | None = None
        self.store_errors: Counter | None = None
        if rate_limit_store:
            self.store_up = Gauge("facade_rate_limit_store_up", "1 while the rate limit store "
                                  "shared by the replicas answers (or was not asked yet), 0 "
                                  "while it does not.", registry=r,
                                  multiprocess_mode="livemin")
            self.store_up.set(1)
            self.store_errors = Counter("facade_rate_limit_store_errors", "Checks of the rate "
                                        "limit store that failed, by reason.", ["reason"],
                                        registry=r)
            for reason in STORE_ERRORS:
                self.store_errors.labels(reason)
        add_runtime_metrics(self.registry, workers_of=None if multiprocess_dir is None
                            else os.getppid())
        self._open: set[str] = set()
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        for tool in tools:
            self.calls.labels(tool, "ok")
            self.duration.labels(tool)
            self.in_flight.labels(tool).set(0)
        for backend in backends:
            self.breaker_changed(backend, "closed")

    def _child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once: `labels` validates and locks on every
        call, and a call feeds seven series. Labels are bounded, and so is this."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def call_started(self, record: CallRecord) -> None:
        self._open.add(record.request_id)
        self._child(self.in_flight, record.tool).inc()

    def call_finished(self, record: CallRecord) -> None:
        tool = record.tool
        if record.request_id in self._open:  # calls refused before starting never counted
            self._open.discard(record.request_id)
            self._child(self.in_flight, tool).dec()
        self._child(self.calls, tool, record.outcome).inc()
        self._child(self.duration, tool).observe(record.elapsed)
        if record.response_bytes:
            self._child(self.bytes, tool).inc(record.response_bytes)

    def backend_response(self, tool: str, status: int, seconds: float) -> None:
        self._child(self.responses, tool, str(status)).inc()
        self._child(self.backend_duration, tool).observe(seconds)

    def response_deviations(self, tool: str, found: Sequence[Deviation]) -> None:
        for deviation in found:
            self.deviations.labels(tool, deviation.kind).inc()

    def retry(self, tool: str, reason: str) -> None:
        self.retries.labels(tool, reason).inc()

    def breaker_changed(self, backend: str, state: str) -> None:
        if state not in BREAKER_STATES:
            return
        if isinstance(self.breaker, Enum):
            self.breaker.labels(backend).state(state)
            return
        for each in BREAKER_STATES:
            self.breaker.labels(backend, each).set(1 if each == state else 0)

    def shed(self) -> None:
        self.shed_requests.inc()

    def token_exchange(self, backend: str, outcome: str) -> None:
        self.exchanges.labels(backend, outcome).inc()

    def rate_limit_store_changed(self, up: bool) -> None:
        if self.store_up is not None:
            self.store_up.set(1 if up else 0)

    def rate_limit_store_failed(self, reason: str) -> None:
        if self.store_errors is not None and reason in STORE_ERRORS:
            self.store_errors.labels(reason).inc()

    @property
    def calls_in_flight(self) -> int:
        return len(self._open)

    def render(self) -> bytes:
        return generate_latest(self.registry)
