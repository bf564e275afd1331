"""End to end: `facade serve --transport http` under faults, overload and slow clients.

Real children on 127.0.0.1 behind a real MCP client: readiness through a backend outage with
no traffic, overload shed with 503 + Retry-After, and slow-header connections closed while
normal calls go on. Every wait is bounded by a deadline; every load is a fixed count."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import inventory_backend
import pytest
from fastmcp import Client
from faulty_backend import FaultyHandler

from .conftest import ROOT, TOKEN, child_env, free_port, stop, wait_for_port

pytestmark = pytest.mark.integration

DEADLINE = 15.0  # the longest any wait below may take
CURATION = """
version: 1
spec: @SPEC@
server: {name: inventory}
backend:
  base_url: ${INVENTORY_URL}
  auth: {bearer_env: INVENTORY_TOKEN}
  retries: {attempts: 0}
  timeouts: {connect: 1}
  circuit_breaker: {failures: 2, reset_after: 1}
tools:
  get_item:
    operation: getItem
    params: {X-Tenant: {value: acme}, itemId: {rename: sku}}
"""


@contextmanager
def serving(tmp_path: Path, backend_url: str, curation: str | None = None) -> Iterator[str]:
    """A `facade serve --transport http` child; yields its base URL."""
    config = tmp_path / "curation.yaml"
    config.write_text(curation or CURATION.replace(
        "@SPEC@", str(ROOT / "specs" / "inventory.yaml")))
    port, log = free_port(), tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "facade", "serve", "--config", str(config), "--transport",
             "http", "--port", str(port)], env=child_env(backend_url), cwd=tmp_path,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(proc, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
    assert TOKEN not in log.read_text(errors="replace")


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"not within {DEADLINE:g}s: {what}"
        time.sleep(0.05)


def breaker(base: str) -> str:
    for line in httpx.get(base + "/metrics", trust_env=False).text.splitlines():
        if line.startswith("facade_circuit_breaker_state{") and line.endswith(" 1.0"):
            return line.split('facade_circuit_breaker_state="')[1].split('"')[0]
    raise AssertionError("no breaker state in /metrics")


async def get_item(base: str) -> Any:
    async with Client(base + "/mcp") as client:
        return await client.call_tool("get_item", {"sku": "SKU-1042"}, raise_on_error=False)


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_readiness_outlives_no_backend_outage(tmp_path: Path) -> None:
    """The backend stops, the breaker opens, the backend comes back; no call in between.
    /readyz says "ready" all along (the replica itself can serve), /metrics shows the
    breaker, and the first call once `reset_after` has passed gets through."""
    backend, url = inventory_backend.start(0)
    port = backend.server_address[1]
    with serving(tmp_path, url) as base:
        assert not (await get_item(base)).is_error
        backend.shutdown()
        backend.server_close()
        for _ in range(2):
            assert "is unreachable" in text_of(await get_item(base))
        assert "circuit breaker open" in text_of(await get_item(base))
        assert breaker(base) == "open"
        ready = httpx.get(base + "/readyz", trust_env=False)
        assert (ready.status_code, ready.text) == (200, "ready\n")

        backend, _ = inventory_backend.start(port)  # back, and nobody calls
        try:
            ready = httpx.get(base + "/readyz", trust_env=False)
            assert (ready.status_code, ready.text) == (200, "ready\n")
            until(lambda: breaker(base) == "half_open", "the breaker half opens by itself")
            result = await get_item(base)
            assert not result.is_error, text_of(result)
            assert breaker(base) == "closed"
        finally:
            backend.shutdown()
            backend.server_close()


FAULTY = """
version: 1
spec: @SPEC@
server:
  name: faulty
  limits: {max_in_flight: 2, request_timeout: 1}
backend:
  base_url: ${INVENTORY_URL}/api
  auth: {bearer_env: INVENTORY_TOKEN}
tools:
  behave: {operation: behave}
"""


@contextmanager
def serving_faulty(tmp_path: Path, faulty_url: str) -> Iterator[str]:
    with serving(tmp_path, faulty_url, curation=FAULTY.replace(
            "@SPEC@", str(ROOT / "tests" / "data" / "faulty" / "openapi.yaml"))) as base:
        yield base


def raw_call(base: str, arguments: dict[str, Any]) -> httpx.Response:
    return httpx.post(base + "/mcp", trust_env=False, timeout=DEADLINE, headers={
        "Accept": "application/json, text/event-stream"}, json={
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "behave", "arguments": arguments}})


async def test_overload_is_shed_with_503_and_retry_after(tmp_path: Path,
                                                         faulty_url: str) -> None:
    """Two requests under way (the limit here): a third is answered 503 at once, with
    `Retry-After` and a JSON-RPC error saying the façade, not the backend, is overloaded;
    once they are done, calls are served again."""
    with serving_faulty(tmp_path, faulty_url) as base:
        before = len(FaultyHandler.seen)
        async with Client(base + "/mcp") as one, Client(base + "/mcp") as two:
            slow = [asyncio.ensure_future(client.call_tool(
                "behave", {"mode": "slow", "delay": 2, "key": f"shed-{i}"}))
                for i, client in enumerate((one, two))]
            await asyncio.to_thread(until, lambda: len(FaultyHandler.seen) >= before + 2,
                                    "both slow calls reached the backend")
            shed = await asyncio.to_thread(raw_call, base, {"mode": "ok", "key": "shed-3"})
            assert (shed.status_code, shed.headers["retry-after"]) == (503, "1")
            assert shed.json()["error"]["message"] == (
                "facade is overloaded: 2 requests are under way on this replica; retry in 1 s")
            assert [(await s).is_error for s in slow] == [False, False]
        served = await asyncio.to_thread(raw_call, base, {"mode": "ok", "key": "shed-4"})
        assert served.status_code == 200 and served.json()["result"]["isError"] is False
        metrics = httpx.get(base + "/metrics", trust_env=False).text
        assert "facade_requests_shed_total 1.0" in metrics
    assert [r["query"].get("key") for r in FaultyHandler.seen[before:]].count(["shed-3"]) == 0


async def test_a_client_that_never_finishes_its_headers_is_disconnected(
        tmp_path: Path, faulty_url: str) -> None:
    """Twenty connections send half a request and stop (slowloris). Each is closed once
    `server.limits.request_timeout` (1 s here) has passed, while a normal call made in the
    meantime is answered."""
    with serving_faulty(tmp_path, faulty_url) as base:
        port = int(base.rsplit(":", 1)[1])
        slow = []
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: app")
            slow.append(sock)
        try:
            result = await asyncio.to_thread(raw_call, base, {"mode": "ok", "key": "loris"})
            assert result.status_code == 200 and result.json()["result"]["isError"] is False
            for sock in slow:  # the server closes it: recv sees the end, not a timeout
                assert sock.recv(1024) == b""
        finally:
            for sock in slow:
                sock.close()
        kept = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        with kept:  # a connection that sends nothing at all is closed the same way
            assert kept.recv(1024) == b""
