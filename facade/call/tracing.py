"""Call time: OpenTelemetry spans of a tool call and of each backend attempt.

Off until `enable()` hands it a tracer (`facade.serve.tracing` does, at `serve` start, when
the `otel` extra is installed and the `OTEL_*` environment asks for traces). Off, each
helper returns one shared `nullcontext`: a call pays a global lookup, nothing more. Only
the OpenTelemetry API is used here (fastmcp depends on it, so it is always installed).

    tools/call get_item                   SERVER, fastmcp's (parent: inbound traceparent)
    └── facade.tool_call get_item         INTERNAL: tool, outcome, backend status, retries
        ├── GET /items/{itemId}           CLIENT: one per attempt; `traceparent` sent with it
        └── GET /items/{itemId}           (a retry)

What is never recorded: argument values (unless the curation lists them in `audit_args`),
URLs filled with values, headers, bodies, error messages (they can quote arguments) and
exception text. Argument values that are recorded pass through `scrub`, as in the audit log.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from facade.call.scrub import scrub

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from facade.call.events import CallRecord
    from facade.tools import ToolDefinition

__all__ = ["INSTRUMENTATION_NAME", "Target", "answered", "attempt_span", "call_span", "enable",
           "enabled"]

INSTRUMENTATION_NAME = "facade"
_OFF: AbstractContextManager[None] = contextlib.nullcontext()
_tracer: Tracer | None = None


def enable(tracer: Tracer | None) -> None:
    """Trace every call from now on with `tracer`; None turns tracing off again."""
    global _tracer
    _tracer = tracer


def enabled() -> bool:
    return _tracer is not None


def call_span(record: CallRecord) -> AbstractContextManager[Span | None]:
    """The span of one tool call, current while it runs; its attributes are read from
    `record` when it ends. Sets `record.trace_id` for the audit log."""
    if _tracer is None:
        return _OFF
    return _call_span(_tracer, record)


@contextlib.contextmanager
def _call_span(tracer: Tracer, record: CallRecord) -> Iterator[Span]:
    with tracer.start_as_current_span(
            f"facade.tool_call {record.tool}", kind=SpanKind.INTERNAL,
            attributes={"facade.tool": record.tool, "facade.request_id": record.request_id},
            record_exception=False, set_status_on_exception=False) as span:
        context = span.get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
        try:
            yield span
        finally:
            _finish_call(span, record)


def _finish_call(span: Span, record: CallRecord) -> None:
    attributes: dict[str, AttributeValue] = {"facade.outcome": record.outcome,
                                             "facade.retries": record.retries}
    if record.backend_status is not None:
        attributes["facade.backend.status_code"] = record.backend_status
    for name, value in (record.arguments or {}).items():  # only the tool's audit_args
        attributes[f"facade.argument.{name}"] = _attribute(value)
    span.set_attributes(attributes)
    if record.outcome != "ok":
        span.set_attribute("error.type", record.outcome)
        span.set_status(Status(StatusCode.ERROR))


def _attribute(value: object) -> AttributeValue:
    """An argument value as a span attribute: scalars as they are, anything else as JSON;
    strings scrubbed of registered secrets."""
    if isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)
    return scrub(text)


@dataclass(frozen=True)
class Target:
    """A backend, as its attempt spans name it: `server.address`, `server.port`, and the
    base URL's path, which prefixes each `url.template`."""

    base_path: str
    attributes: Mapping[str, AttributeValue]

    @classmethod
    def of(cls, host: str | None, port: int | None, base_path: str) -> Target:
        attributes: dict[str, AttributeValue] = {}
        if host:
            attributes["server.address"] = host
        if port:
            attributes["server.port"] = port
        return cls(base_path.rstrip("/"), attributes)


def attempt_span(tool: ToolDefinition, attempt: int, headers: MutableMapping[str, str],
                 backend: Target) -> AbstractContextManager[Span | None]:
    """The CLIENT span of one backend attempt (0 for the first). `headers` (the request's)
    get the W3C `traceparent` and `tracestate` of this span."""
    if _tracer is None:
        return _OFF
    return _attempt_span(_tracer, tool, attempt, headers, backend)


@contextlib.contextmanager
def _attempt_span(tracer: Tracer, tool: ToolDefinition, attempt: int,
                  headers: MutableMapping[str, str], backend: Target) -> Iterator[Span]:
    method, path = tool.binding.method, tool.binding.path
    attributes: dict[str, AttributeValue] = {
        **backend.attributes, "http.request.method": method,
        "url.template": backend.base_path + path, "facade.tool": tool.name,
        "facade.attempt": attempt + 1}
    if attempt:
        attributes["http.request.resend_count"] = attempt
    with tracer.start_as_current_span(
            f"{method} {path}", kind=SpanKind.CLIENT, attributes=attributes,
            record_exception=False, set_status_on_exception=False) as span:
        propagate.inject(headers)
        try:
            yield span
        except BaseException as exc:
            # The type only: an exception's text can hold the URL, and with it arguments.
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
            raise


def answered(span: Span | None, status: int) -> None:
    """The backend answered an attempt with `status`."""
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))
