"""What the official MCP conformance suite checks of a tools-only server, offline.

`.ci/conformance` runs the real suite (npm `@modelcontextprotocol/conformance`, Node 22)
against `facade serve --transport http` with default settings. These tests make the same
requests with the official `mcp` client and raw HTTP, so a regression shows up in every
pytest run, network or not:

    server-initialize, ping, tools-list, logging-set-level   the client round trips
    server-sse-multiple-streams   three concurrent POSTs, all accepted (JSON responses)
    dns-rebinding-protection      a non-localhost Host/Origin gets a 4xx; localhost is fine
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from mcp.client import Client as SDKClient
from mcp.shared.exceptions import MCPDeprecationWarning

from .conftest import HttpServer

pytestmark = pytest.mark.integration

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "conformance-dns-rebinding-test", "version": "1.0.0"}}}


async def test_initialize_ping_tools_list_and_logging(http_server: HttpServer) -> None:
    async with SDKClient(http_server.url, mode="legacy") as client:
        assert client.server_info is not None and client.server_info.name
        with pytest.warns(MCPDeprecationWarning, match="ping"):  # gone after 2026-07-28
            assert (await client.send_ping()).model_dump(exclude_none=True) == {}
        tools = (await client.list_tools()).tools
        assert tools
        for tool in tools:
            assert tool.name and tool.description
            assert tool.input_schema["type"] == "object"
        with pytest.warns(MCPDeprecationWarning, match="logging"):  # SEP-2577
            result = await client.set_logging_level("info")
        assert result.model_dump(exclude_none=True) == {}


async def test_concurrent_posts_are_all_accepted(http_server: HttpServer) -> None:
    headers = {"Accept": "text/event-stream, application/json",
               "MCP-Protocol-Version": "2025-03-26"}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        responses = await asyncio.gather(*[
            client.post(http_server.url, headers=headers, json={
                "jsonrpc": "2.0", "id": 1000 + i, "method": "tools/list", "params": {}})
            for i in range(3)])
    assert [r.status_code for r in responses] == [200] * 3
    assert [r.json()["id"] for r in responses] == [1000, 1001, 1002]


def _initialize(server: HttpServer, host: str) -> int:
    headers: dict[str, Any] = {"Host": host, "Origin": f"http://{host}",
                               "Accept": "application/json, text/event-stream"}
    return httpx.post(server.url, json=INITIALIZE, headers=headers,
                      trust_env=False).status_code


def test_dns_rebinding_protection_on_by_default(http_server: HttpServer) -> None:
    port = http_server.url.split(":")[2].split("/")[0]
    assert 400 <= _initialize(http_server, "evil.example.com") < 500
    assert 400 <= _initialize(http_server, f"evil.example.com:{port}") < 500
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert _initialize(http_server, host) == 200, host
