"""End to end: OpenTelemetry traces across the hop, client → facade → backend.

The façade's HTTP app (`build_http`, what `facade serve --transport http` runs) serves on
127.0.0.1 in this process under uvicorn, so the SDK's `InMemorySpanExporter` sees every
span: fastmcp's SERVER span of the MCP request, facade's span of the tool call and the
CLIENT span of each backend attempt. The backend (tests/faulty_backend.py) records the
headers it receives. A real MCP client (fastmcp's, over streamable HTTP) makes the calls.
The out-of-process test, with the OTLP exporter and the `OTEL_*` environment, is
tests/e2e/test_tracing_otlp.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from faulty_backend import FaultyHandler
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from facade import load
from facade.call import tracing
from facade.serve.http import build_http
from facade.serve.span_export import Sanitized
from facade.serve.tracing import install

from .conftest import ROOT, TOKEN, free_port

pytestmark = pytest.mark.integration

# The caller's trace, as an agent's HTTP client would send it.
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
# An argument value the curation does not audit: it must reach no span.
UNAUDITED = "unaudited-key-7f3e"

CURATION = """
version: 1
spec: @SPEC@
server: {name: traced}
backend:
  base_url: ${FAULTY_URL}/api
  auth: {bearer_env: FAULTY_TOKEN}
  retries: {attempts: 2, backoff: 0.01, max_backoff: 0.01}
tools:
  behave:
    operation: behave
    audit_args: [mode]
"""


class _Gated(SimpleSpanProcessor):
    """Keeps spans only while a test of this module records: the tracer provider is the
    process's from the first such test on, and other tests' spans are none of ours."""

    recording = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.recording:
            super().on_end(span)


_EXPORTER = InMemorySpanExporter()
_PROCESSOR = _Gated(Sanitized(_EXPORTER))  # as `facade serve` exports: no messages
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(_PROCESSOR)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, as `facade serve` turns it on, into memory."""
    if trace.get_tracer_provider() is not _PROVIDER:
        install(_PROVIDER)  # once per process: OpenTelemetry allows no second provider
    else:
        tracing.enable(_PROVIDER.get_tracer(tracing.INSTRUMENTATION_NAME))
    _EXPORTER.clear()
    _PROCESSOR.recording = True
    try:
        yield _EXPORTER
    finally:
        _PROCESSOR.recording = False
        tracing.enable(None)
        _EXPORTER.clear()


@pytest.fixture
def curation(tmp_path: Path, faulty_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAULTY_URL", faulty_url)
    monkeypatch.setenv("FAULTY_TOKEN", TOKEN)
    path = tmp_path / "curation.yaml"
    path.write_text(CURATION.replace("@SPEC@", str(ROOT / "tests" / "data" / "faulty" /
                                                   "openapi.yaml")))
    return path


@asynccontextmanager
async def serving(config: Path) -> AsyncIterator[str]:
    """The façade's HTTP app under uvicorn on 127.0.0.1; yields the MCP endpoint."""
    port = free_port()
    app, _ = build_http(load(config), public_url=f"http://127.0.0.1:{port}",
                        environ={"FAULTY_TOKEN": TOKEN})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                    pytest.fail("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def call(url: str, arguments: dict[str, Any], headers: dict[str, str] | None = None
               ) -> Any:
    transport = StreamableHttpTransport(url, headers=headers or {})
    async with Client(transport) as client:
        return await client.call_tool("behave", arguments, raise_on_error=False)


def _traceparents(since: int) -> list[tuple[str, str]]:
    """(trace id, parent span id) of each backend request since the `since`th."""
    found = []
    for request in FaultyHandler.seen[since:]:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        version, trace_id, parent, flags = headers["traceparent"].split("-")
        assert version == "00" and int(flags, 16) & 1  # sampled
        found.append((trace_id, parent))
    return found


def audited(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The fields of each audit record (`facade.audit`), one per tool call."""
    return [dict(r.fields) for r in caplog.records if r.name == "facade.audit"]


def _hex(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


def _named(exported: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in exported if s.name == name]


def _every_attribute(exported: tuple[ReadableSpan, ...]) -> str:
    """All attribute values and event attributes of every span, as one text."""
    values: list[Any] = []
    for span in exported:
        values += list((span.attributes or {}).values())
        for event in span.events:
            values += list((event.attributes or {}).values())
    return json.dumps(values, default=str)


async def test_an_inbound_traceparent_reaches_the_backend_under_nested_spans(
        spans: InMemorySpanExporter, curation: Path, caplog: pytest.LogCaptureFixture
        ) -> None:
    """One call, retried once (503, then 200): the caller's trace id reaches the backend
    on both attempts, each under its own CLIENT span, under facade's span of the call,
    under fastmcp's SERVER span, whose parent is the caller's span."""
    caplog.set_level(logging.INFO, logger="facade.audit")
    before = len(FaultyHandler.seen)
    async with serving(curation) as url:
        result = await call(url, {"mode": "flaky", "fail": 1, "key": UNAUDITED},
                            headers={"traceparent": TRACEPARENT})
    assert not result.is_error, result
    assert json.loads(result.content[0].text)["hit"] == 2

    exported = spans.get_finished_spans()
    [server_span] = [s for s in _named(exported, "tools/call behave")  # not the client's
                     if s.kind == SpanKind.SERVER]
    [call_span] = _named(exported, "facade.tool_call behave")
    attempts = sorted(_named(exported, "GET /b/{mode}"),
                      key=lambda s: (s.attributes or {})["facade.attempt"])
    assert len(attempts) == 2

    # One trace, the caller's; each span under the one before.
    for span in (server_span, call_span, *attempts):
        assert _hex(span.context.trace_id, 32) == TRACE_ID
    assert server_span.kind == SpanKind.SERVER
    assert server_span.parent is not None and server_span.parent.is_remote
    assert _hex(server_span.parent.span_id, 16) == CALLER_SPAN
    assert call_span.parent is not None
    assert call_span.parent.span_id == server_span.context.span_id
    for attempt in attempts:
        assert attempt.kind == SpanKind.CLIENT
        assert attempt.parent is not None
        assert attempt.parent.span_id == call_span.context.span_id

    # The backend got each attempt's own context, in the caller's trace.
    assert _traceparents(before) == [(TRACE_ID, _hex(a.context.span_id, 16))
                                     for a in attempts]

    assert call_span.attributes == {
        "facade.tool": "behave", "facade.request_id": call_span.attributes["facade.request_id"],
        "facade.outcome": "ok", "facade.retries": 1, "facade.backend.status_code": 200,
        "facade.argument.mode": "flaky"}  # audit_args: [mode]; `key` and `fail` are not
    assert call_span.status.status_code == StatusCode.UNSET
    first, second = attempts
    common = {"http.request.method": "GET", "url.template": "/api/b/{mode}",
              "server.address": "127.0.0.1", "facade.tool": "behave"}
    assert first.attributes == {**common, "server.port": first.attributes["server.port"],
                                "facade.attempt": 1, "http.response.status_code": 503,
                                "error.type": "503"}
    assert first.status.status_code == StatusCode.ERROR
    assert second.attributes == {**common, "server.port": first.attributes["server.port"],
                                 "facade.attempt": 2, "http.request.resend_count": 1,
                                 "http.response.status_code": 200}
    assert second.status.status_code == StatusCode.UNSET

    # No unaudited argument, header or credential in any span, facade's or fastmcp's.
    recorded = _every_attribute(exported)
    for needle in (UNAUDITED, TOKEN, "Bearer", TRACEPARENT):
        assert needle not in recorded

    # The audit line joins the trace.
    [line] = audited(caplog)
    assert (line["tool"], line["outcome"], line["trace_id"]) == ("behave", "ok", TRACE_ID)
    assert line["request_id"] == call_span.attributes["facade.request_id"]


async def test_meta_traceparent_parents_the_call(spans: InMemorySpanExporter,
                                                 curation: Path) -> None:
    """Without the HTTP header, the trace context in the request's `_meta` (what an
    instrumented MCP client sends: the mcp SDK's client writes its span there) is the
    parent, and reaches the backend."""
    agent = _PROVIDER.get_tracer("agent")
    before = len(FaultyHandler.seen)
    async with serving(curation) as url:
        with agent.start_as_current_span("agent turn") as turn:
            result = await call(url, {"mode": "ok"})
    assert not result.is_error
    trace_id = _hex(turn.get_span_context().trace_id, 32)

    exported = spans.get_finished_spans()
    # The mcp SDK's client span, inside fastmcp's, is the one that writes `_meta`.
    [client_span] = _named(exported, "MCP send tools/call behave")
    assert client_span.kind == SpanKind.CLIENT
    [server_span] = [s for s in _named(exported, "tools/call behave")
                     if s.kind == SpanKind.SERVER]
    [call_span] = _named(exported, "facade.tool_call behave")
    [attempt] = _named(exported, "GET /b/{mode}")
    assert server_span.parent is not None
    assert server_span.parent.span_id == client_span.context.span_id
    assert call_span.parent is not None
    assert call_span.parent.span_id == server_span.context.span_id
    assert {_hex(s.context.trace_id, 32) for s in (server_span, call_span, attempt)} == {
        trace_id}
    assert _traceparents(before) == [(trace_id, _hex(attempt.context.span_id, 16))]


async def test_failed_calls_say_how_and_never_why(spans: InMemorySpanExporter,
                                                  curation: Path) -> None:
    """A refused argument and a backend error: the outcome and status are recorded; the
    error message (which can quote an argument) and the argument are not."""
    before = len(FaultyHandler.seen)
    async with serving(curation) as url:
        refused = await call(url, {"mode": "ok", "key": UNAUDITED, "fail": "many"})
        missing = await call(url, {"mode": "status", "status": 404, "key": UNAUDITED})
    assert refused.is_error and missing.is_error
    assert len(FaultyHandler.seen) == before + 1  # the refused call sent nothing

    exported = spans.get_finished_spans()
    first, second = sorted(_named(exported, "facade.tool_call behave"),
                           key=lambda s: s.start_time or 0)
    assert (first.attributes or {})["facade.outcome"] == "invalid_arguments"
    assert (first.attributes or {})["error.type"] == "invalid_arguments"
    assert first.status.status_code == StatusCode.ERROR
    assert "facade.backend.status_code" not in (first.attributes or {})
    assert (second.attributes or {})["facade.outcome"] == "backend_error"
    assert (second.attributes or {})["facade.backend.status_code"] == 404
    [attempt] = _named(exported, "GET /b/{mode}")  # 404 is not retried
    assert attempt.parent is not None and attempt.parent.span_id == second.context.span_id
    assert (attempt.attributes or {})["http.response.status_code"] == 404
    assert attempt.status.status_code == StatusCode.ERROR
    for span in exported:
        assert not span.status.description, span.name  # no message on any span
    recorded = _every_attribute(exported)
    assert UNAUDITED not in recorded and "many" not in recorded


async def test_untraced_nothing_is_sent_or_logged(curation: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Tracing off (no extra, or no OTEL_* asking): an inbound traceparent is not passed
    on, and the audit line has no trace id, as before tracing existed."""
    assert not tracing.enabled()
    caplog.set_level(logging.INFO, logger="facade.audit")
    before = len(FaultyHandler.seen)
    async with serving(curation) as url:
        result = await call(url, {"mode": "ok"}, headers={"traceparent": TRACEPARENT})
    assert not result.is_error
    [request] = FaultyHandler.seen[before:]
    assert not {"traceparent", "tracestate"} & {k.lower() for k in request["headers"]}
    [line] = audited(caplog)
    assert line["outcome"] == "ok" and "trace_id" not in line
