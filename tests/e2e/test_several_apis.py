"""End to end with two APIs: `python -m facade serve` children (stdio, then HTTP), each
tool proxied to its own 127.0.0.1 backend with its own bearer token and breaker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import inventory_backend
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from faulty_backend import FaultyHandler

from .conftest import ROOT, TOKEN, child_env, free_port, stop, wait_for_port

pytestmark = pytest.mark.integration

FAULTY_TOKEN = "faulty-stdio-token-5d1e"
CURATION = f"""
version: 1
apis:
  inventory:
    namespace: inv
    spec: {ROOT / "specs" / "inventory.yaml"}
    backend: {{base_url: "${{INVENTORY_URL}}", auth: {{bearer_env: INVENTORY_TOKEN}}}}
    tools:
      get_item:
        operation: getItem
        params: {{X-Tenant: {{value: acme}}, itemId: {{rename: sku}}}}
  faulty:
    spec: {ROOT / "tests" / "data" / "faulty" / "openapi.yaml"}
    backend: {{base_url: "${{FAULTY_URL}}/api", auth: {{bearer_env: FAULTY_TOKEN}}}}
    tools:
      echo_headers: {{operation: behave}}
"""


async def test_two_apis_over_stdio(example_env: dict[str, str], faulty_url: str,
                                   tmp_path: Path) -> None:
    config = tmp_path / "curation.yaml"
    config.write_text(CURATION)
    env = child_env(example_env["INVENTORY_URL"], FAULTY_URL=faulty_url,
                    FAULTY_TOKEN=FAULTY_TOKEN)
    transport = StdioTransport(command=sys.executable,
                               args=["-m", "facade", "serve", "--config", str(config)],
                               env=env, cwd=str(tmp_path), keep_alive=False,
                               log_file=tmp_path / "stderr.log")
    inventory_before, faulty_before = len(inventory_backend.Handler.seen), \
        len(FaultyHandler.seen)
    async with Client(transport) as client:
        assert sorted(t.name for t in await client.list_tools()) == [
            "echo_headers", "inv_get_item"]
        item = await client.call_tool("inv_get_item", {"sku": "SKU-1042"})
        assert item.structured_content is not None
        assert item.structured_content["sku"] == "SKU-1042"
        echoed = await client.call_tool("echo_headers", {"mode": "ok"})
        assert echoed.structured_content is not None
        assert echoed.structured_content["result"]["ok"] is True
    inventory_auth = [r["headers"].get("Authorization")
                      for r in inventory_backend.Handler.seen[inventory_before:]]
    faulty_headers = FaultyHandler.seen[faulty_before:]
    assert inventory_auth == [f"Bearer {TOKEN}"]
    assert [r["headers"].get("Authorization") for r in faulty_headers] == [
        f"Bearer {FAULTY_TOKEN}"]
    assert TOKEN not in json.dumps([r["headers"] for r in faulty_headers])
    stderr = (tmp_path / "stderr.log").read_text()
    assert FAULTY_TOKEN not in stderr and TOKEN not in stderr


async def test_two_apis_over_http_readiness_and_metrics(
        example_env: dict[str, str], faulty_url: str, tmp_path: Path) -> None:
    config = tmp_path / "curation.yaml"
    config.write_text(CURATION.replace(
        "auth: {bearer_env: FAULTY_TOKEN}}",
        "auth: {bearer_env: FAULTY_TOKEN}, retries: {attempts: 0}, "
        "circuit_breaker: {failures: 1, reset_after: 60}}"))
    port = free_port()
    log = tmp_path / "server.log"
    env = child_env(example_env["INVENTORY_URL"], FAULTY_URL=faulty_url,
                    FAULTY_TOKEN=FAULTY_TOKEN)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "facade", "serve", "--config", str(config),
             "--transport", "http", "--port", str(port)],
            env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)
        try:
            wait_for_port(proc, port, log)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base) as http:
                assert (await http.get("/readyz")).text.strip() == "ready"
                async with Client(f"{base}/mcp") as client:
                    failed = await client.call_tool(
                        "echo_headers", {"mode": "status", "status": 503, "key": "http-cb"},
                        raise_on_error=False)
                    assert failed.is_error
                    item = await client.call_tool("inv_get_item", {"sku": "SKU-1042"})
                    assert not item.is_error  # the other API's breaker is closed
                ready = await http.get("/readyz")  # one backend down: still serving
                assert (ready.status_code, ready.text.strip()) == (200, "ready")
                metrics = (await http.get("/metrics")).text
            assert f'facade_circuit_breaker_state{{backend="{faulty_url}/api",' \
                'facade_circuit_breaker_state="open"} 1.0' in metrics
            inventory = example_env["INVENTORY_URL"]
            assert f'facade_circuit_breaker_state{{backend="{inventory}",' \
                'facade_circuit_breaker_state="closed"} 1.0' in metrics
        finally:
            stop(proc)
    assert FAULTY_TOKEN not in log.read_text() and TOKEN not in log.read_text()
