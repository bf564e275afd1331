"""Serve time: OpenTelemetry traces, when the `otel` extra is installed and asked for.

`start_tracing()` runs when `facade serve` starts. Tracing is on when the environment asks
for it in the standard way: `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) or
`OTEL_TRACES_EXPORTER` is set, and `OTEL_SDK_DISABLED` is not `true`. Then the SDK's
`TracerProvider` becomes the process's (fastmcp's SERVER span of each MCP request goes
there too), with a batching OTLP/HTTP exporter that reads its own `OTEL_EXPORTER_OTLP_*`
settings, behind `facade.serve.span_export.Sanitized` (no span leaves the process with a
message or an argument value, fastmcp's included). The sampler follows
`OTEL_TRACES_SAMPLER`, the resource `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
(`service.name` defaults to `facade`). Without the extra, or without those variables,
nothing here runs and facade serves exactly as it would untraced.

`InboundTraceContext` makes the W3C `traceparent` of an inbound HTTP request the parent of
what the request does; fastmcp itself reads only `_meta.traceparent`, which the header
takes precedence over. The spans themselves are made at call time (`facade.call.tracing`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Receive, Scope, Send

from facade.call.tracing import INSTRUMENTATION_NAME, enable
from facade.version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["InboundTraceContext", "Tracing", "install", "start_tracing", "wanted_exporters"]

logger = logging.getLogger("facade.tracing")
EXTRA_HINT = "pip install 'facade-mcp[otel]'"
_HEADERS = (b"traceparent", b"tracestate")
_MAX_HEADER = 512  # a valid traceparent is 55 characters; W3C caps tracestate at 512


def _say(line: str) -> None:
    """On the `facade.tracing` logger (the one log stream, `facade.serve.logs`); tracing
    asked for and not set up is a warning."""
    logger.log(logging.WARNING if line.endswith("serving without traces") else logging.INFO,
               line)


def wanted_exporters(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for (`otlp`, `console`); empty when it asks
    for no traces, or turns the SDK off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
             if n.strip()]
    if named:
        return [] if named == ["none"] else named
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT")
    return ["otlp"] if endpoint else []


@dataclass
class Tracing:
    """The tracer provider `start_tracing` installed; `shutdown()` exports what is left."""

    provider: TracerProvider
    description: str

    def shutdown(self) -> None:
        enable(None)
        self.provider.shutdown()


def start_tracing(environ: Mapping[str, str], say: Callable[[str], None] = _say
                  ) -> Tracing | None:
    """Set up tracing as the `OTEL_*` variables of `environ` ask (the SDK itself reads
    `os.environ`: pass that). None, with a line saying why when it was asked for, if
    tracing stays off; a misconfiguration never stops `serve`."""
    names = wanted_exporters(environ)
    if not names:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from facade.serve.span_export import Sanitized
    except ImportError:
        say(f"the OTEL_* environment asks for traces, but the otel extra is not "
            f"installed ({EXTRA_HINT}); serving without traces")
        return None
    exporters: list[tuple[SpanExporter, str]] = []
    for name in names:
        made = _exporter(name, environ)
        if isinstance(made, str):
            say(f"{made}; serving without traces")
            return None
        exporters.append(made)
    attributes: dict[str, Any] = {"service.version": __version__}
    if not environ.get("OTEL_SERVICE_NAME") and "service.name=" not in environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""):
        attributes["service.name"] = "facade"
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter, _ in exporters:
        provider.add_span_processor(BatchSpanProcessor(Sanitized(exporter)))
    install(provider)
    service = provider.resource.attributes.get("service.name")
    description = " and ".join(where for _, where in exporters)
    say(f"tracing as service {service!r}, {description}")
    return Tracing(provider, description)


def _exporter(name: str, environ: Mapping[str, str]) -> tuple[SpanExporter, str] | str:
    """An exporter and where it sends spans, or why there is none."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # Never stdout: over stdio that is the MCP protocol's stream.
        return ConsoleSpanExporter(out=sys.stderr), "spans printed on stderr"
    if name != "otlp":
        return (f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (facade offers otlp, "
                "console or none)")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        return (f"OTEL_EXPORTER_OTLP_PROTOCOL: facade exports OTLP as http/protobuf only, "
                f"not {protocol!r} (point it at the collector's HTTP port, usually 4318)")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        return f"the OTLP exporter is not installed ({EXTRA_HINT})"
    exporter = OTLPSpanExporter()
    # Scheme, host and port only: a URL can carry credentials.
    target = urlsplit(getattr(exporter, "_endpoint", "") or "")
    where = f"{target.scheme}://{target.hostname}" + (f":{target.port}" if target.port else "")
    return exporter, f"OTLP/HTTP to {where}"


def install(provider: TracerProvider) -> None:
    """Make `provider` the process's tracer provider (OpenTelemetry allows that once per
    process) and trace facade's calls with it."""
    trace.set_tracer_provider(provider)
    enable(provider.get_tracer(INSTRUMENTATION_NAME, __version__))


class InboundTraceContext:
    """ASGI: an inbound `traceparent` (and `tracestate`) header becomes the current trace
    context while the request is handled, so fastmcp's span of the request, and facade's
    spans under it, continue the caller's trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {}
        if scope["type"] == "http":
            carrier = {name.decode("latin-1"): value.decode("latin-1")
                       for name, value in scope["headers"]
                       if name in _HEADERS and len(value) <= _MAX_HEADER}
        if "traceparent" not in carrier:
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(propagate.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
