"""Tracing set-up without serving: when the `OTEL_*` environment turns tracing on, what a
misconfiguration or a missing extra says, what of a span is exported, and which modules
may import the OpenTelemetry SDK. (The spans themselves: tests/e2e/test_tracing.py.)"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from facade.call import tracing
from facade.serve.span_export import Sanitized
from facade.serve.tracing import start_tracing, wanted_exporters

PACKAGE = Path(__file__).resolve().parent.parent / "facade"


@pytest.mark.parametrize(("environ", "exporters"), [
    ({}, []),
    ({"OTEL_SERVICE_NAME": "x"}, []),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ["otlp"]),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, ["otlp"]),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
    ({"OTEL_TRACES_EXPORTER": "console, OTLP"}, ["console", "otlp"]),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, []),
    ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
], ids=["nothing", "a-name-alone", "endpoint", "traces-endpoint", "exporter", "two",
        "none", "disabled", "not-disabled"])
def test_the_environment_turns_tracing_on(environ: dict[str, str],
                                          exporters: list[str]) -> None:
    assert wanted_exporters(environ) == exporters


@pytest.mark.parametrize(("environ", "message"), [
    ({"OTEL_TRACES_EXPORTER": "jaeger"},
     "OTEL_TRACES_EXPORTER: unknown exporter 'jaeger' (facade offers otlp, console "
     "or none); serving without traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
      "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL: facade exports OTLP as http/protobuf only, not "
     "'grpc' (point it at the collector's HTTP port, usually 4318); serving without traces"),
], ids=["unknown-exporter", "grpc"])
def test_a_misconfiguration_says_so_and_serves_untraced(environ: dict[str, str],
                                                        message: str) -> None:
    said: list[str] = []
    assert start_tracing(environ, said.append) is None
    assert said == [message]
    assert not tracing.enabled()


def test_without_the_extra_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    said: list[str] = []
    assert start_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
                         said.append) is None
    assert said == ["the OTEL_* environment asks for traces, but the otel extra is "
                    "not installed (pip install 'facade-mcp[otel]'); serving without traces"]
    assert not tracing.enabled()


def test_nothing_is_said_or_set_up_when_tracing_is_not_asked_for() -> None:
    said: list[str] = []
    assert start_tracing({"PATH": "/bin"}, said.append) is None
    assert said == []
    assert not tracing.enabled()


def test_exported_spans_carry_no_message_and_no_filled_uri() -> None:
    """fastmcp records a failed request's message (a tool error can quote an argument)
    and the URI a resource read filled in; neither leaves the process."""
    context = SpanContext(trace_id=1, span_id=2, is_remote=False)
    span = ReadableSpan(
        name="resources/read inventory://items/{sku}", context=context, kind=SpanKind.SERVER,
        attributes={"mcp.resource.uri": "inventory://items/SKU-1042",
                    "fastmcp.component.key": "template:inventory://items/{sku}"},
        events=[Event("exception", {"exception.type": "ToolError",
                                    "exception.message": "sku: 'SKU-1042' is bad",
                                    "exception.stacktrace": "Traceback … SKU-1042"}),
                Event("retry", {"attempt": 2})],
        status=Status(StatusCode.ERROR, "sku: 'SKU-1042' is bad"), start_time=1, end_time=2)
    memory = InMemorySpanExporter()
    assert Sanitized(memory).export([span]) == SpanExportResult.SUCCESS
    [sent] = memory.get_finished_spans()
    assert sent.attributes == {"fastmcp.component.key": "template:inventory://items/{sku}"}
    assert [(e.name, e.attributes) for e in sent.events] == [
        ("exception", {"exception.type": "ToolError"}), ("retry", {"attempt": 2})]
    assert (sent.status.status_code, sent.status.description) == (StatusCode.ERROR, None)
    assert (sent.name, sent.context, sent.kind, sent.start_time, sent.end_time) == (
        span.name, context, SpanKind.SERVER, 1, 2)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_tracing_setup_imports_the_sdk() -> None:
    """import-linter cannot forbid an external package's subpackages (the API is fine
    everywhere but load time; the SDK and exporters are the optional extra)."""
    importers = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if any(name.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))
                        for name in _imports(p))}
    assert importers == {"serve/tracing.py", "serve/span_export.py"}
