"""`FacadeMCP` looks a tool up in its one provider directly (no task group per call); what
it finds, and when it finds nothing, must be what FastMCP's own lookup gives."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import FastMCP
from fastmcp.server.auth import AuthContext
from fastmcp.tools import Tool
from fastmcp.utilities.versions import VersionSpec

from facade.serve.server import FacadeMCP


def _servers() -> list[FastMCP[Any]]:
    servers: list[FastMCP[Any]] = [FastMCP("plain"), FacadeMCP("facade")]
    for server in servers:
        @server.tool(version="1.0")
        def lookup(sku: str) -> str:
            """One item, v1."""
            return sku

        @server.tool(name="lookup", version="2.0")
        def lookup_v2(sku: str) -> str:
            """One item, v2."""
            return sku.upper()

        @server.tool
        def other() -> str:
            """Another tool."""
            return "other"
    return servers


def _seen(tool: Tool | None) -> tuple[str, str | None, str | None] | None:
    return None if tool is None else (tool.name, tool.version, tool.description)


@pytest.mark.parametrize("name, version", [
    ("lookup", None), ("lookup", VersionSpec(eq="1.0")), ("lookup", VersionSpec(lt="2.0")),
    ("lookup", VersionSpec(eq="3.0")), ("other", None), ("missing", None)])
async def test_the_direct_lookup_finds_what_fastmcp_finds(name: str,
                                                         version: VersionSpec | None) -> None:
    plain, facade = _servers()
    expected = _seen(await plain.get_tool(name, version))
    assert _seen(await facade.get_tool(name, version)) == expected
    assert (expected is None) == (name == "missing" or version == VersionSpec(eq="3.0"))


async def test_a_tool_with_its_own_auth_check_takes_fastmcps_way() -> None:
    refused: list[str] = []

    def nobody(context: AuthContext) -> bool:
        refused.append(context.component.name)
        return False

    for server in _servers():
        server.add_tool(Tool.from_function(lambda: "x", name="guarded", auth=nobody))
        assert await server.get_tool("guarded") is None
    assert refused.count("guarded") >= 2  # asked by both lookups


async def test_a_second_provider_takes_fastmcps_way() -> None:
    plain, facade = _servers()
    child = FastMCP("child")

    @child.tool
    def mounted() -> str:
        """From a mounted server."""
        return "m"

    for server in (plain, facade):
        server.mount(child, namespace="child")
    found = _seen(await facade.get_tool("child_mounted"))
    assert found is not None and found == _seen(await plain.get_tool("child_mounted"))


async def test_the_direct_lookup_starts_no_task_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """What it is for: FastMCP's lookup gathers its providers' answers in a task group."""
    from fastmcp.utilities.async_utils import gather as real

    gathered: list[str] = []

    async def counted(*args: Any, **kwargs: Any) -> Any:
        gathered.append("gather")
        return await real(*args, **kwargs)

    monkeypatch.setattr("fastmcp.server.providers.aggregate.gather", counted)
    plain, facade = _servers()
    assert await facade.get_tool("other") is not None
    assert gathered == []
    assert await plain.get_tool("other") is not None
    assert gathered == ["gather"]
