"""End to end, out of process: `facade serve --transport http` configured only by the
standard `OTEL_*` environment exports its spans over OTLP/HTTP.

The collector is a small HTTP server on 127.0.0.1 that records what is POSTed to
/v1/traces and decodes it with the OTLP protobuf classes (installed with the exporter).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import inventory_backend
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from facade.version import __version__
from log_support import audit, messages

from .conftest import TOKEN, child_env, free_port, serve_command, stop, wait_for_port

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
COLLECTOR_SECRET = "collector-secret-5c1d"  # OTEL_EXPORTER_OTLP_HEADERS: never logged


class _Collector(BaseHTTPRequestHandler):
    posts: list[tuple[str, dict[str, str], bytes]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.posts.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _spans() -> tuple[dict[str, str], list[Any]]:
    """The resource attributes and the spans of everything the collector received."""
    resource: dict[str, str] = {}
    spans = []
    for path, headers, body in _Collector.posts:
        assert path == "/v1/traces"
        assert headers["content-type"] == "application/x-protobuf"
        assert headers["authorization"] == f"Bearer {COLLECTOR_SECRET}"
        request = ExportTraceServiceRequest.FromString(body)
        for batch in request.resource_spans:
            resource |= {a.key: a.value.string_value for a in batch.resource.attributes}
            for scope in batch.scope_spans:
                spans += list(scope.spans)
    return resource, spans


def _attributes(span: Any) -> dict[str, Any]:
    values = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        values[a.key] = getattr(a.value, kind)
    return values


async def test_the_otel_environment_exports_the_call_over_otlp(
        backend_url: str, collector: str, tmp_path: Path) -> None:
    log, port = tmp_path / "server.log", free_port()
    env = child_env(backend_url, OTEL_EXPORTER_OTLP_ENDPOINT=collector,
                    OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer {COLLECTOR_SECRET}",
                    OTEL_SERVICE_NAME="inventory-facade", OTEL_BSP_SCHEDULE_DELAY="100")
    before = len(inventory_backend.Handler.seen)
    with open(log, "wb") as out:
        proc = subprocess.Popen(serve_command("--transport", "http", "--port", str(port)),
                                env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_for_port(proc, port, log)
        transport = StreamableHttpTransport(f"http://127.0.0.1:{port}/mcp", headers={
            "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"})
        async with Client(transport) as client:
            result = await client.call_tool("get_item", {"sku": "SKU-1042"})
        assert result.structured_content is not None
    finally:
        stop(proc)  # SIGTERM: the drain, then the spans still batched are exported
    assert proc.returncode == 0
    text = log.read_text(errors="replace")
    assert f"tracing as service 'inventory-facade', OTLP/HTTP to {collector}" in messages(text)
    assert COLLECTOR_SECRET not in text and TOKEN not in text

    # The backend got the trace.
    [request] = inventory_backend.Handler.seen[before:]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["traceparent"].split("-")[1] == TRACE_ID

    deadline = time.monotonic() + 10  # the exporter posts from its own thread
    while not _Collector.posts and time.monotonic() < deadline:
        time.sleep(0.05)
    resource, spans = _spans()
    assert resource["service.name"] == "inventory-facade"
    assert resource["service.version"] == __version__
    by_name = {s.name: s for s in spans if s.trace_id.hex() == TRACE_ID}
    server = by_name["tools/call get_item"]
    call = by_name["facade.tool_call get_item"]
    attempt = by_name["GET /items/{itemId}"]
    assert server.parent_span_id.hex() == CALLER_SPAN
    assert call.parent_span_id == server.span_id
    assert attempt.parent_span_id == call.span_id
    assert headers["traceparent"].split("-")[2] == attempt.span_id.hex()
    assert _attributes(call)["facade.outcome"] == "ok"
    assert _attributes(attempt)["url.template"] == "/v1/items/{itemId}"
    assert _attributes(attempt)["http.response.status_code"] == 200
    # Nothing the curation does not audit: no argument value, no credential.
    recorded = json.dumps([_attributes(s) for s in spans], default=str)
    assert "SKU-1042" not in recorded and TOKEN not in recorded

    [line] = audit(text)
    assert line["trace_id"] == TRACE_ID
