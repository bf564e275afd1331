"""Serve time: what of a span leaves the process (imports the OpenTelemetry SDK: only
`facade.serve.tracing` imports this, once it knows the `otel` extra is installed).

facade's own spans hold no message and no argument value outside `audit_args`
(`facade.call.tracing`). The spans of fastmcp and the mcp SDK can: fastmcp sets a failed
request's error message as its span's status and records the exception, and a tool
error's message quotes the argument it refuses; `mcp.resource.uri` is the URI read, with
its arguments filled in. `Sanitized` wraps the exporter and sends every span without
them: status descriptions are dropped, an `exception` event keeps only `exception.type`,
and `mcp.resource.uri` is left out (`fastmcp.component.key` names the resource template).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

__all__ = ["Sanitized"]

_DROPPED_ATTRIBUTES = frozenset({"mcp.resource.uri"})
_KEPT_OF_EXCEPTIONS = frozenset({"exception.type"})


class Sanitized(SpanExporter):
    """An exporter that passes spans on to `exporter` without messages or values."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([sanitized(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def sanitized(span: ReadableSpan) -> ReadableSpan:
    attributes = {k: v for k, v in (span.attributes or {}).items()
                  if k not in _DROPPED_ATTRIBUTES}
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=attributes, events=[_event(e) for e in span.events], links=span.links,
        kind=span.kind, status=Status(span.status.status_code), start_time=span.start_time,
        end_time=span.end_time, instrumentation_scope=span.instrumentation_scope)


def _event(event: Event) -> Event:
    if event.name != "exception":
        return event
    kept = {k: v for k, v in (event.attributes or {}).items() if k in _KEPT_OF_EXCEPTIONS}
    return Event(event.name, kept, event.timestamp)
