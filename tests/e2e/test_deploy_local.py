"""One machine, real processes: replicas behind a round-robin balancer, a graceful SIGTERM,
and the refusal to listen beyond localhost without inbound auth."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import httpx2
import inventory_backend
import pytest
from fastmcp import Client as FastMCPClient
from fastmcp.client.transports import StreamableHttpTransport
from log_support import messages
from mcp.client import Client as SDKClient
from mcp.client.streamable_http import streamable_http_client

from .conftest import (
    ROOT,
    check_item,
    check_tool_listing,
    child_env,
    free_port,
    serve_command,
    stop,
    wait_for_port,
)
from .test_auth_http import write_project

pytestmark = pytest.mark.integration

Start = Callable[..., tuple[subprocess.Popen[bytes], str, Path]]


@pytest.fixture
def start_facade(tmp_path: Path) -> Iterator[Start]:
    """Start `python -m facade serve --transport http` children; stop them all afterwards."""
    children: list[subprocess.Popen[bytes]] = []

    def start(backend_url: str, *args: str, config: Path | None = None
              ) -> tuple[subprocess.Popen[bytes], str, Path]:
        port = free_port()
        log = tmp_path / f"facade-{port}.log"
        command = serve_command("--transport", "http", "--port", str(port), *args)
        if config is not None:
            command[command.index("--config") + 1] = str(config)
        with open(log, "wb") as out:
            proc = subprocess.Popen(command, env=child_env(backend_url), cwd=tmp_path,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        children.append(proc)
        wait_for_port(proc, port, log)
        return proc, f"http://127.0.0.1:{port}", log

    yield start
    for proc in children:
        stop(proc)


class RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer in a transport: each request goes to the next replica."""

    def __init__(self, bases: list[str]) -> None:
        self.ports = [httpx2.URL(b).port for b in bases]
        self.inner = httpx2.AsyncHTTPTransport()
        self.sent: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self.ports[sum(self.sent.values()) % len(self.ports)]
        self.sent[port] += 1
        request.url = request.url.copy_with(port=port)
        request.headers["Host"] = f"127.0.0.1:{port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_two_replicas_serve_one_client_alternately(
        start_facade: Start, backend_url: str, example_env: dict[str, str]) -> None:
    """Stateless streamable HTTP: no session affinity, any replica answers any request."""
    bases = [start_facade(backend_url)[1], start_facade(backend_url)[1]]
    balancer = RoundRobin(bases)
    http = httpx2.AsyncClient(transport=balancer, timeout=30)
    async with http, SDKClient(streamable_http_client(bases[0] + "/mcp", http_client=http),
                               mode="legacy") as client:
        check_tool_listing((await client.list_tools()).tools)
        for sku in ["SKU-1042", "SKU-1044", "SKU-1042", "SKU-1046"] * 2:
            result = await client.call_tool("get_item", {"sku": sku})
            assert result.is_error is False, result
            assert result.structured_content is not None
            assert result.structured_content["sku"] == sku
    assert min(balancer.sent.values()) >= 5, balancer.sent  # both replicas did real work

    balancer = RoundRobin(bases)
    transport = StreamableHttpTransport(bases[1] + "/mcp", httpx_client_factory=lambda **kw:
                                        httpx2.AsyncClient(**kw, transport=balancer))
    async with FastMCPClient(transport) as fastmcp_client:
        for _ in range(3):
            check_item((await fastmcp_client.call_tool("get_item", {"sku": "SKU-1042"}
                                                       )).structured_content)
    assert len(balancer.sent) == 2


class SlowHandler(inventory_backend.Handler):
    """The example backend, but SKU-0000 waits until the test sets `released` (answered
    then as SKU-1042). It keeps its own `seen` list, and its teardown releases a pending
    request, so one a test abandoned can't land in the shared backend's record later."""

    seen: list[dict[str, Any]] = []
    arrived = threading.Event()
    released = threading.Event()

    def do_GET(self) -> None:  # noqa: N802
        if "SKU-0000" in self.path:
            SlowHandler.arrived.set()
            SlowHandler.released.wait(60)  # a bound for a test that dies; teardown sets it
            self.path = self.path.replace("SKU-0000", "SKU-1042")
        super().do_GET()


@pytest.fixture
def slow_backend() -> Iterator[str]:
    SlowHandler.arrived.clear()
    SlowHandler.released.clear()
    SlowHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    SlowHandler.released.set()
    server.shutdown()
    server.server_close()


GRACEFUL = """
    version: 1
    spec: specs/inventory.yaml
    server: {{name: inventory, shutdown_grace: {grace}}}
    backend:
      base_url: ${{INVENTORY_URL}}
      auth: {{bearer_env: INVENTORY_TOKEN}}
    tools:
      get_item:
        operation: getItem
        params:
          itemId: {{rename: sku}}
          X-Tenant: {{value: acme}}
"""


def _call_in_background(base: str, sku: str) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["response"] = httpx.post(base + "/mcp", trust_env=False, timeout=30, json={
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "get_item", "arguments": {"sku": sku}}}, headers={
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-11-25"})
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    assert SlowHandler.arrived.wait(10), "the call never reached the backend"
    return thread, outcome


def _wait_for_line(proc: subprocess.Popen[bytes], log: Path, line: str) -> None:
    """Until the child logged `line`; bounded by the child's life and a deadline."""
    deadline = time.monotonic() + 20
    while line not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{line!r} never came:\n" + log.read_text(errors="replace"))
        time.sleep(0.05)


def _lines(log: Path) -> list[str]:
    """The lifecycle lines (stdout and stderr both: every line is a JSON log record)."""
    return messages(log.read_text(errors="replace"), "facade.serve")


def test_sigterm_drains_then_exits_cleanly(start_facade: Start, slow_backend: str,
                                           example_env: dict[str, str],
                                           tmp_path: Path) -> None:
    config = write_project(tmp_path / "project", GRACEFUL.format(grace=30))
    proc, base, log = start_facade(slow_backend, config=config)
    thread, outcome = _call_in_background(base, "SKU-0000")

    proc.send_signal(signal.SIGTERM)
    _wait_for_line(proc, log, "draining: 1 request(s) in flight, up to 30s to finish")
    ready = httpx.get(base + "/readyz", trust_env=False, timeout=5)
    assert (ready.status_code, ready.text) == (503, "not ready: shutting down\n")
    assert httpx.get(base + "/healthz", trust_env=False, timeout=5).status_code == 200
    assert "drained: " not in log.read_text(errors="replace")  # still waiting for it

    SlowHandler.released.set()  # the backend answers: the drain ends with the request
    thread.join(15)
    response = outcome["response"]
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["isError"] is False and result["structuredContent"]["sku"] == "SKU-1042"

    assert proc.wait(20) == 0  # well before the 30 s grace period
    text = log.read_text(errors="replace")
    assert _lines(log)[1:] == [
        "draining: 1 request(s) in flight, up to 30s to finish",
        "drained: every request finished",
        "stopped"]
    assert "Application shutdown complete." in text  # lifespan ran: backend client closed
    assert "Traceback" not in text and "Cancel" not in text


def test_sigterm_gives_up_after_the_grace_period(start_facade: Start, slow_backend: str,
                                                 example_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    """The backend never answers (until teardown): after the 1 s grace period the request
    is answered 503 and the process exits 0."""
    config = write_project(tmp_path / "project", GRACEFUL.format(grace=1))
    proc, base, log = start_facade(slow_backend, config=config)
    thread, outcome = _call_in_background(base, "SKU-0000")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    thread.join(10)
    assert outcome["response"].status_code == 503
    assert _lines(log)[1:] == [
        "draining: 1 request(s) in flight, up to 1s to finish",
        "drained: grace period over, 1 request(s) still in flight",
        "grace period over; a request under way was answered 503",
        "stopped"]
    assert "Traceback" not in log.read_text(errors="replace")


def test_idle_sigterm_stops_at_once(start_facade: Start, backend_url: str) -> None:
    """Nothing in flight: the drain ends at once instead of sitting out the 20 s grace
    period (the log says why it ended; the wait's bound is under the grace period)."""
    proc, base, log = start_facade(backend_url)
    assert httpx.get(base + "/readyz", trust_env=False).text == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert _lines(log)[1:] == [
        "draining: 0 request(s) in flight, up to 20s to finish",
        "drained: every request finished",
        "stopped"]


def test_no_public_bind_without_auth(tmp_path: Path, backend_url: str) -> None:
    port = free_port()
    proc = subprocess.run(serve_command("--transport", "http", "--host", "0.0.0.0", "--port",
                                        str(port)), env=child_env(backend_url), cwd=tmp_path,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "refusing to serve on 0.0.0.0 without inbound auth" in proc.stderr
    assert "--allow-unauthenticated" in proc.stderr and "server.auth" in proc.stderr
    assert "Traceback" not in proc.stderr
    with socket.socket() as free:  # it exited before binding anything
        free.bind(("0.0.0.0", port))


BREAKER = """
    version: 1
    spec: specs/inventory.yaml
    backend:
      base_url: http://127.0.0.1:{port}/v1
      retries: {{attempts: 0}}
      circuit_breaker: {{failures: 1, reset_after: 600}}
    tools:
      get_item:
        operation: getItem
        params:
          itemId: {{rename: sku}}
          X-Tenant: {{value: acme}}
"""


def test_an_open_breaker_leaves_the_replica_ready(start_facade: Start, backend_url: str,
                                                  tmp_path: Path) -> None:
    """The upstream's breaker is seen in /metrics, never in /readyz: a backend outage must
    not take the replicas out of service (see tests/e2e/test_reliability.py)."""
    config = write_project(tmp_path / "project", BREAKER.format(port=free_port()))
    proc, base, log = start_facade(backend_url, config=config)
    assert httpx.get(base + "/readyz", trust_env=False).status_code == 200
    called = httpx.post(base + "/mcp", trust_env=False, timeout=10, json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_item", "arguments": {"sku": "SKU-1042"}}}, headers={
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"})
    assert called.json()["result"]["isError"] is True  # nothing listens there
    ready = httpx.get(base + "/readyz", trust_env=False)
    assert (ready.status_code, ready.text) == (200, "ready\n")
    metrics = httpx.get(base + "/metrics", trust_env=False).text
    assert 'facade_circuit_breaker_state="open"} 1.0' in metrics
    assert httpx.get(base + "/healthz", trust_env=False).status_code == 200  # still alive


def test_readiness_follows_a_reload_that_changes_the_tool_count(
        start_facade: Start, backend_url: str, tmp_path: Path) -> None:
    """`--watch` over HTTP: after an edit drops a tool, the replica stays ready."""
    shutil.copytree(ROOT / "specs", tmp_path / "project" / "specs")
    config = tmp_path / "project" / "curation.yaml"
    config.write_text((ROOT / "curation.yaml").read_text())
    proc, base, log = start_facade(backend_url, "--watch", config=config)
    _wait_for_line(proc, log, '"message":"watching ')
    assert httpx.get(base + "/readyz", trust_env=False).text == "ready\n"

    block = ("  get_category:\n    operation: getCategory\n    description: A product "
             "category with its parent chain and subcategories.\n    params:\n"
             "      categoryId: {rename: category_id}\n")
    assert block in config.read_text()
    config.write_text(config.read_text().replace(block, ""))  # 4 tools become 3
    _wait_for_line(proc, log, "reloaded curation.yaml: 3 tool(s), removed "
                   "get_category")
    ready = httpx.get(base + "/readyz", trust_env=False)
    assert (ready.status_code, ready.text) == (200, "ready\n")
