"""`facade serve --watch` and 2026-07-28 clients: the official `mcp` client negotiates
2026-07-28 (no session), opens `subscriptions/listen`, the curation is edited on disk, the
façade reloads, the stream carries `ToolsListChanged`, and a refetch of tools/list shows
the new tool: over stdio and over streamable HTTP. Over HTTP a listen stream takes none of
the `max_in_flight` slots, is bounded by `max_listeners`, and ends gracefully when a drain
begins. Without `--watch` nothing ever changes, so listen is not served. (Clients of the
handshake era get `notifications/tools/list_changed` on their session: tests/e2e/
test_watch.py.) Every wait is for a log line or an event, bounded by a deadline."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import StdioServerParameters
from mcp.client import Client as SDKClient
from mcp.client.stdio import stdio_client
from mcp.client.subscriptions import ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp_types import METHOD_NOT_FOUND

from .conftest import ROOT, child_env, free_port, stop, wait_for_port
from .test_watch import WATCHING, _logged

pytestmark = pytest.mark.integration

RENAMED = "reloaded curation.yaml: 4 tool(s), added get_category_tree, removed " \
    "get_category"


def _workdir(tmp_path: Path, server: str = "") -> Path:
    """A copy of the bundled example; `server` is added to its `server:` section."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    config = tmp_path / "curation.yaml"
    text = (ROOT / "curation.yaml").read_text()
    config.write_text(text.replace("server:\n", "server:\n" + server, 1))
    return config


def _rename_a_tool(config: Path) -> None:
    config.write_text(config.read_text().replace("  get_category:\n",
                                                 "  get_category_tree:\n"))


async def _next_event(sub: Any) -> Any:
    with anyio.fail_after(15):
        async for event in sub:
            return event
    pytest.fail("the listen stream ended without an event")


async def _refetch_and_call(client: SDKClient) -> None:
    names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["list_items", "get_item", "get_item_stock", "get_category_tree"]
    result = await client.call_tool("get_category_tree", {"category_id": 3})
    assert result.structured_content is not None
    assert result.structured_content["name"] == "Drills"


async def test_stdio_client_hears_a_reload_on_its_listen_stream(
        tmp_path: Path, backend_url: str) -> None:
    config = _workdir(tmp_path)
    log = tmp_path / "stderr.txt"
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "facade", "serve", "--watch", "--config",
                                      str(config)],
        env=child_env(backend_url), cwd=str(tmp_path))
    with log.open("w") as errlog:
        async with SDKClient(stdio_client(params, errlog=errlog)) as client:
            assert client.protocol_version == "2026-07-28"
            capabilities = client.server_capabilities
            assert capabilities is not None and capabilities.tools is not None
            assert capabilities.tools.list_changed is True
            await _logged(log, WATCHING)
            async with client.listen(tools_list_changed=True, prompts_list_changed=True,
                                     resources_list_changed=True) as sub:
                assert sub.honored.tools_list_changed is True
                _rename_a_tool(config)
                events = {type(await _next_event(sub)).__name__ for _ in range(3)}
                assert events == {"ToolsListChanged", "ResourcesListChanged",
                                  "PromptsListChanged"}
                await _refetch_and_call(client)


@contextmanager
def _http_server(config: Path, backend_url: str, *extra: str) -> Iterator[tuple[str, Any]]:
    """`facade serve --watch --transport http` on a free port: its URL and process."""
    port = free_port()
    log = config.parent / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "facade", "serve", "--watch", "--transport", "http",
             "--port", str(port), "--config", str(config), *extra],
            env=child_env(backend_url), cwd=config.parent, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(proc, port, log)
            yield f"http://127.0.0.1:{port}/mcp", proc
        finally:
            stop(proc)


async def test_http_client_hears_a_reload_and_its_cached_list_is_dropped(
        tmp_path: Path, backend_url: str) -> None:
    """With a 10-minute list cache hint the client would keep the old list; the event
    on its listen stream evicts it, so the refetch sees the new tool at once."""
    config = _workdir(tmp_path, "  list_cache: {ttl: 600}\n")
    log = tmp_path / "server.log"
    with _http_server(config, backend_url) as (url, _):
        async with SDKClient(url) as client:
            assert client.protocol_version == "2026-07-28"
            listing = await client.list_tools()
            assert (listing.ttl_ms, listing.cache_scope) == (600_000, "private")
            await _logged(log, WATCHING)
            async with client.listen(tools_list_changed=True) as sub:
                _rename_a_tool(config)
                assert isinstance(await _next_event(sub), ToolsListChanged)
                await _logged(log, RENAMED)
                await _refetch_and_call(client)


async def test_http_listen_streams_are_bounded_apart_from_calls_and_end_on_drain(
        tmp_path: Path, backend_url: str) -> None:
    config = _workdir(tmp_path, "  limits: {max_in_flight: 1, max_listeners: 1}\n")
    log = tmp_path / "server.log"
    with _http_server(config, backend_url) as (url, proc):
        async with SDKClient(url) as client:
            await _logged(log, WATCHING)
            async with client.listen(tools_list_changed=True) as sub:
                # The open stream holds no in-flight slot: with max_in_flight 1, calls go on.
                for _ in range(3):
                    result = await client.call_tool("get_item", {"sku": "SKU-1042"})
                    assert result.is_error is False
                # ... but it holds the one listener slot.
                async with SDKClient(url) as other:
                    with pytest.raises(MCPError) as refused:
                        async with other.listen(tools_list_changed=True):
                            pass
                    assert refused.value.error.message == (
                        "facade has 1 listen streams open on this replica; retry in 1 s")
                    assert "1 listen streams open" in _raw_listen(url).text

                # SIGTERM: the drain ends the stream gracefully, and holds nothing up.
                proc.send_signal(signal.SIGTERM)
                with anyio.fail_after(15):
                    rest = [event async for event in sub]
                assert rest == []
            await _logged(log, "draining: 0 request(s) in flight")
            await _logged(log, "drained: every request finished")
    assert "grace period over" not in log.read_text()


def _raw_listen(url: str) -> httpx.Response:
    """A 2026-07-28 `subscriptions/listen` POST, as the SDK sends it."""
    body = {"jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen", "params": {
        "notifications": {"toolsListChanged": True},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}}
    response = httpx.post(url, json=body, timeout=10, headers={
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "subscriptions/listen"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    return response


async def test_without_watch_listen_is_not_served(backend_url: str) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "facade", "serve", "--config",
                                      str(ROOT / "curation.yaml")],
        env=child_env(backend_url), cwd=str(ROOT))
    async with SDKClient(params) as client:
        assert client.protocol_version == "2026-07-28"
        capabilities = client.server_capabilities
        assert capabilities is not None and capabilities.tools is not None
        assert capabilities.tools.list_changed is False
        with pytest.raises(MCPError) as refused:
            async with client.listen(tools_list_changed=True):
                pass
        assert refused.value.error.code == METHOD_NOT_FOUND
