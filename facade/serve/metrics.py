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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from facade.call.events import CallRecord, Observer
from facade.deviations import Deviation
from facade.serve.runtime_metrics import add_runtime_metrics

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BREAKER_STATES = ["closed", "half_open", "open"]
STORE_ERRORS = ("timeout", "connection", "error")
# The `_created` series double the output and nothing alerts on them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics(Observer):
    """Counters, histograms and gauges for every call and backend attempt."""

    def __init__(self, tools: Iterable[str] = (), backends: Iterable[str] = (), *,
                 rate_limit_store: bool = False) -> None:
        """`tools` and `backends` (base URLs, one breaker each) get series from the start,
        so rates and alerts see zeros; so does the shared rate limit's store, if there is
        one (`rate_limit_store`)."""
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.calls = Counter("facade_tool_calls", "Tool calls by tool and outcome.",
                             ["tool", "outcome"], registry=r)
        self.duration = Histogram("facade_tool_call_duration_seconds",
                                  "Tool call latency, validation to result.", ["tool"],
                                  buckets=_BUCKETS, registry=r)
        self.in_flight = Gauge("facade_tool_calls_in_flight", "Tool calls under way.",
                               ["tool"], registry=r)
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
        self.breaker = Enum("facade_circuit_breaker_state", "The backend's circuit breaker.",
                            ["backend"], states=BREAKER_STATES, registry=r)
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
                                  "while it does not.", registry=r)
            self.store_up.set(1)
            self.store_errors = Counter("facade_rate_limit_store_errors", "Checks of the rate "
                                        "limit store that failed, by reason.", ["reason"],
                                        registry=r)
            for reason in STORE_ERRORS:
                self.store_errors.labels(reason)
        add_runtime_metrics(r)
        self._open: set[str] = set()
        for tool in tools:
            self.calls.labels(tool, "ok")
            self.duration.labels(tool)
            self.in_flight.labels(tool).set(0)
        for backend in backends:
            self.breaker.labels(backend).state("closed")

    def call_started(self, record: CallRecord) -> None:
        self._open.add(record.request_id)
        self.in_flight.labels(record.tool).inc()

    def call_finished(self, record: CallRecord) -> None:
        if record.request_id in self._open:  # calls refused before starting never counted
            self._open.discard(record.request_id)
            self.in_flight.labels(record.tool).dec()
        self.calls.labels(record.tool, record.outcome).inc()
        self.duration.labels(record.tool).observe(record.elapsed)
        if record.response_bytes:
            self.bytes.labels(record.tool).inc(record.response_bytes)

    def backend_response(self, tool: str, status: int, seconds: float) -> None:
        self.responses.labels(tool, str(status)).inc()
        self.backend_duration.labels(tool).observe(seconds)

    def response_deviations(self, tool: str, found: Sequence[Deviation]) -> None:
        for deviation in found:
            self.deviations.labels(tool, deviation.kind).inc()

    def retry(self, tool: str, reason: str) -> None:
        self.retries.labels(tool, reason).inc()

    def breaker_changed(self, backend: str, state: str) -> None:
        if state in BREAKER_STATES:
            self.breaker.labels(backend).state(state)

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
