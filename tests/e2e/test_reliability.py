"""End to end: `facade serve --transport http` under faults, overload and slow clients.

Real children on 127.0.0.1 behind a real MCP client: readiness through a backend outage with
no traffic, overload shed with 503 + Retry-After, and slow-header connections closed while
normal calls go on. Every wait is bounded by a deadline; every load is a fixed count."""

from __future__ import annotations

import asyncio
import json
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
server:
  name: inventory
  @SERVER@
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
def serving(tmp_path: Path, backend_url: str, server: str = "", **env: str
            ) -> Iterator[str]:
    """A `facade serve --transport http` child; yields its base URL."""
    config = tmp_path / "curation.yaml"
    config.write_text(CURATION.replace("@SPEC@", str(ROOT / "specs" / "inventory.yaml"))
                      .replace("@SERVER@", server))
    port, log = free_port(), tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "facade", "serve", "--config", str(config), "--transport",
             "http", "--port", str(port)], env=child_env(backend_url, **env), cwd=tmp_path,
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
    with serving(tmp_path, url, INVENTORY_TOKEN=TOKEN) as base:
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
