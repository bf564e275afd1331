"""End to end over streamable HTTP: a real `python -m facade serve --transport http` child
on 127.0.0.1, driven by fastmcp.Client, by the official `mcp` SDK client (both the
2026 `server/discover` path and the legacy initialize handshake) and by raw JSON-RPC."""

from __future__ import annotations

import json
from typing import Any

import httpx
import inventory_backend
import pytest
from fastmcp import Client as FastMCPClient
from mcp.client import Client as SDKClient

from .conftest import (
    BAD_SKU,
    NOT_FOUND_ITEM,
    SECRET_IN_404,
    TOKEN,
    HttpServer,
    assert_no_leaks,
    check_backend_request,
    check_item,
    check_tool_listing,
    error_text,
    result_text,
    sent_since,
)

pytestmark = pytest.mark.integration

seen = inventory_backend.Handler.seen


async def test_fastmcp_client(http_server: HttpServer, example_env: dict[str, str]) -> None:
    assert example_env["INVENTORY_TOKEN"] == TOKEN
    async with FastMCPClient(http_server.url) as client:
        check_tool_listing(await client.list_tools())

        before = len(seen)
        result = await client.call_tool("get_item", {"sku": "SKU-1042"})
        check_item(result.structured_content)
        assert_no_leaks(result_text(result))
        check_backend_request(sent_since(seen, before), "/v1/items/SKU-1042",
                              {"expand": ["supplier"]})

        before = len(seen)
        result = await client.call_tool("list_items", {"in_stock": True, "limit": 3})
        assert result.structured_content is not None
        assert [i["sku"] for i in result.structured_content["items"]] == [
            "SKU-1042", "SKU-1044", "SKU-1045"]
        assert_no_leaks(result_text(result))
        check_backend_request(sent_since(seen, before), "/v1/items",
                              {"in_stock": ["true"], "limit": ["3"]})

        before = len(seen)
        result = await client.call_tool("get_item", {"sku": "../etc"}, raise_on_error=False)
        assert error_text(result) == BAD_SKU
        assert len(seen) == before

        result = await client.call_tool("get_item", {"sku": "SKU-9999"}, raise_on_error=False)
        assert error_text(result) == NOT_FOUND_ITEM
        assert SECRET_IN_404 not in result_text(result)
        assert len(seen) == before + 1

        result = await client.call_tool("get_item_stock", {"sku": "SKU-1043"})
        assert result.structured_content == {"result": [
            {"warehouse": "north", "on_hand": 0, "reserved": 1},
            {"warehouse": "south", "on_hand": 3, "reserved": 0}]}
        assert [row["warehouse"] for row in result.data] == ["north", "south"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcp_sdk_client(http_server: HttpServer, example_env: dict[str, str],
                              mode: str) -> None:
    async with SDKClient(http_server.url, mode=mode) as client:
        if mode == "legacy":
            assert client.protocol_version == "2025-11-25"
        assert client.server_info is not None and client.server_info.name == "inventory"
        assert client.instructions is not None and "SKU-1042" in client.instructions

        listing = await client.list_tools()
        assert listing.next_cursor is None
        check_tool_listing(listing.tools)

        before = len(seen)
        result = await client.call_tool("get_item", {"sku": "SKU-1042"})
        assert result.is_error is False
        check_item(result.structured_content)
        assert_no_leaks(result.model_dump_json())
        assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
        check_backend_request(sent_since(seen, before), "/v1/items/SKU-1042",
                              {"expand": ["supplier"]})

        result = await client.call_tool("get_item", {"sku": "../etc"})
        assert error_text(result) == BAD_SKU

        result = await client.call_tool("get_item", {"sku": "SKU-9999"})
        assert error_text(result) == NOT_FOUND_ITEM
        assert SECRET_IN_404 not in result.model_dump_json()
        assert len(seen) == before + 2  # the bad SKU never reached the backend

        result = await client.call_tool("get_category", {"category_id": 3})
        assert result.is_error is False
        assert result.structured_content is not None
        assert result.structured_content["parent"]["parent"]["name"] == "Tools"


def _rpc(client: httpx.Client, method: str, params: dict[str, Any] | None = None,
         version: str | None = "2025-11-25") -> tuple[bytes, dict[str, Any]]:
    headers = {"Accept": "application/json, text/event-stream"}
    if version:
        headers["MCP-Protocol-Version"] = version
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    response = client.post("/mcp", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")  # json_response
    return response.content, response.json()


def test_raw_json_rpc_bytes_on_the_wire(http_server: HttpServer,
                                        example_env: dict[str, str]) -> None:
    """What crosses the wire, before any client library parses it, holds no secrets."""
    base = http_server.url.removesuffix("/mcp")
    with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
        _, init = _rpc(client, "initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}, version=None)
        assert init["result"]["serverInfo"]["name"] == "inventory"

        raw, listed = _rpc(client, "tools/list")
        assert sorted(t["name"] for t in listed["result"]["tools"]) == sorted(
            ["get_category", "get_item", "get_item_stock", "list_items"])
        for needle in ("internal_cost", "sync_token", "contact", "X-Tenant", "itemId"):
            assert needle.encode() not in raw

        raw, called = _rpc(client, "tools/call", {"name": "get_item",
                                                  "arguments": {"sku": "SKU-1044"}})
        assert called["result"]["isError"] is False
        assert called["result"]["structuredContent"]["sku"] == "SKU-1044"
        assert_no_leaks(raw.decode())

        raw, called = _rpc(client, "tools/call", {"name": "get_item",
                                                  "arguments": {"sku": "SKU-9999"}})
        assert called["result"]["isError"] is True
        assert SECRET_IN_404.encode() not in raw
        assert TOKEN.encode() not in raw

        # Still serving after the error.
        _, called = _rpc(client, "tools/call", {"name": "list_items", "arguments": {}})
        assert len(called["result"]["structuredContent"]["items"]) == 5


def test_server_log_holds_no_secrets(http_server: HttpServer,
                                     example_env: dict[str, str]) -> None:
    base = http_server.url.removesuffix("/mcp")
    with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
        _rpc(client, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "raw", "version": "0"}},
             version=None)
        before = len(seen)
        _, called = _rpc(client, "tools/call", {"name": "get_item",
                                                "arguments": {"sku": "SKU-9999"}})
    assert called["result"]["isError"] is True
    # The backend did answer, with its secret in the body.
    assert sent_since(seen, before)["path"] == "/v1/items/SKU-9999"
    assert http_server.proc.poll() is None, "the server died"
    log = http_server.log.read_text(errors="replace")
    assert "serving 4 tool(s) at http://127.0.0.1:" in log
    assert SECRET_IN_404 not in log
    assert TOKEN not in log
