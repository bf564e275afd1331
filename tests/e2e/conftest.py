"""Helpers for the end-to-end tests: real `python -m facade serve` processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "curation.yaml"
TOKEN = "test-token"  # the value tests/conftest.py's `example_env` puts in the backend's env
TOOL_NAMES = {"list_items", "get_item", "get_item_stock", "get_category"}
# Names and values the curation redacts; none may reach a client.
REDACTED_NAMES = ("internal_cost", "sync_token", "contact")
REDACTED_VALUES = ("sales@acme", "+1-555-0100", "tok-")
LEAKS = REDACTED_NAMES + REDACTED_VALUES
# Names of backend parameters that the curation fixes or renames: never in a tool's schema.
HIDDEN_PARAMS = ("X-Tenant", "x-tenant", "expand", "itemId", "categoryId")
SECRET_IN_404 = "db-password"
STARTUP_TIMEOUT = 20.0


def child_env(backend_url: str, **extra: str) -> dict[str, str]:
    """A minimal environment for a facade child process (nothing else leaks in)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")
           if k in os.environ}
    env.update(INVENTORY_URL=backend_url, INVENTORY_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def serve_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "facade", "serve", "--config", str(CONFIG), *extra]


def result_text(result: Any) -> str:
    """Everything a client sees in a tool result (either SDK's result type), as one string."""
    parts = [json.dumps(result.structured_content, ensure_ascii=False)]
    parts += [getattr(block, "text", "") for block in result.content]
    parts.append(json.dumps(result.meta, ensure_ascii=False, default=str))
    return "\n".join(parts)


def error_text(result: Any) -> str:
    assert result.is_error, f"expected an error result, got {result!r}"
    assert result.structured_content is None
    return "\n".join(getattr(block, "text", "") for block in result.content)


def assert_no_leaks(text: str) -> None:
    for needle in LEAKS + (SECRET_IN_404,):
        assert needle not in text, f"{needle!r} reached the client: {text[:500]}"


def tool_json(tool: Any) -> dict[str, Any]:
    """A tool as it is on the wire (camelCase), from either SDK's `Tool` model."""
    dumped: dict[str, Any] = tool.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def check_tool_listing(tools: list[Any]) -> dict[str, dict[str, Any]]:
    """The checks every transport must pass on tools/list; returns the tools by name."""
    listing = {t["name"]: t for t in map(tool_json, tools)}
    assert len(tools) == len(listing) == 4
    assert set(listing) == TOOL_NAMES

    get_item = listing["get_item"]
    schema = get_item["inputSchema"]
    assert schema["type"] == "object"
    assert list(schema["properties"]) == ["sku"]
    assert schema["required"] == ["sku"]
    assert schema["properties"]["sku"]["type"] == "string"
    assert schema.get("additionalProperties") is False

    assert list(listing["list_items"]["inputSchema"]["properties"]) == [
        "tags", "in_stock", "limit", "cursor"]
    assert "required" not in listing["list_items"]["inputSchema"]
    assert listing["list_items"]["inputSchema"]["properties"]["limit"]["default"] == 20
    assert list(listing["get_item_stock"]["inputSchema"]["properties"]) == ["sku"]
    assert list(listing["get_category"]["inputSchema"]["properties"]) == ["category_id"]

    for name, tool in listing.items():
        text = json.dumps({k: tool.get(k) for k in ("inputSchema", "description", "title")})
        for hidden in HIDDEN_PARAMS:
            assert hidden not in text, f"{name} exposes {hidden!r}: {text}"
        # Every property of every input schema is flat: plain JSON types, no nesting objects.
        for prop, prop_schema in tool["inputSchema"]["properties"].items():
            assert prop_schema.get("type") in {"string", "integer", "boolean", "array"}, prop
        assert tool["annotations"]["readOnlyHint"] is True
        assert tool["annotations"]["destructiveHint"] is False
        assert tool["outputSchema"]["type"] == "object"
        assert tool["outputSchema"].get("properties"), name
        output = json.dumps(tool["outputSchema"])
        for redacted in REDACTED_NAMES:
            assert redacted not in output, f"{name}'s outputSchema names {redacted!r}"
    return listing


def check_item(structured: dict[str, Any] | None, sku: str = "SKU-1042") -> None:
    assert structured is not None
    assert structured["sku"] == sku
    assert structured["name"] == "Cordless drill"
    assert structured["price"] == {"amount": 129.0, "currency": "EUR"}
    assert structured["supplier"] == {"name": "Acme Tools"}
    for redacted in REDACTED_NAMES:
        assert redacted not in structured
        assert redacted not in structured["supplier"]


NOT_FOUND_ITEM = ("The backend answered 404 Not Found for GET /items/{sku} (tool get_item): "
                  "nothing found; check the identifier.")
NOT_FOUND_CATEGORY = ("The backend answered 404 Not Found for GET /categories/{category_id} "
                      "(tool get_category): nothing found; check the identifier.")
BAD_SKU = "Invalid arguments for get_item: sku: '../etc' does not match '^SKU-[0-9]{1,8}$'"


def sent_since(seen: list[dict[str, Any]], before: int) -> dict[str, Any]:
    """The one request the backend received since it had received `before`."""
    new = seen[before:]
    assert len(new) == 1, f"expected one backend request, got {len(new)}: {new}"
    return new[0]


def check_backend_request(seen: dict[str, Any], path: str, query: dict[str, list[str]]) -> None:
    """The façade sent the fixed header, the operator's token and the fixed query."""
    assert seen["path"] == path
    assert seen["query"] == query
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["x-caller"] == "facade"
    if path.startswith("/v1/items"):
        assert headers["x-tenant"] == "acme"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a child, escalating to kill; always reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"facade exited with {proc.returncode} before listening:\n"
                        + log.read_text(errors="replace"))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"facade did not listen on 127.0.0.1:{port} within {STARTUP_TIMEOUT:g}s:\n"
                + log.read_text(errors="replace"))


@dataclass(frozen=True)
class HttpServer:
    url: str  # the MCP endpoint, http://127.0.0.1:PORT/mcp
    proc: subprocess.Popen[bytes]
    log: Path  # the child's stdout and stderr


@pytest.fixture(scope="module")
def http_server(backend_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[HttpServer]:
    """`python -m facade serve --transport http` on a free 127.0.0.1 port, run from a
    directory other than the repo (the config path is absolute)."""
    workdir = tmp_path_factory.mktemp("facade-http")
    log = workdir / "server.log"
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            serve_command("--transport", "http", "--host", "127.0.0.1", "--port", str(port)),
            env=child_env(backend_url), cwd=workdir, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)
        try:
            wait_for_port(proc, port, log)
            yield HttpServer(f"http://127.0.0.1:{port}/mcp", proc, log)
        finally:
            stop(proc)
