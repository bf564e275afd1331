"""End to end over stdio: a real `python -m facade serve` child driven by fastmcp.Client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import inventory_backend
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from .conftest import (
    BAD_SKU,
    NOT_FOUND_ITEM,
    CONFIG,
    SECRET_IN_404,
    TOKEN,
    assert_no_leaks,
    check_backend_request,
    check_item,
    check_tool_listing,
    child_env,
    error_text,
    result_text,
    sent_since,
    serve_command,
)

pytestmark = pytest.mark.integration

seen = inventory_backend.Handler.seen


@asynccontextmanager
async def stdio_client(backend_url: str, workdir: Path) -> AsyncIterator[Client[StdioTransport]]:
    """A connected client; the child exits when the block does (keep_alive=False)."""
    command = serve_command()
    transport = StdioTransport(command=command[0], args=command[1:],
                               env=child_env(backend_url), cwd=str(workdir),
                               keep_alive=False, log_file=workdir / "stderr.log")
    async with Client(transport) as client:
        yield client


async def test_tools_list_is_flat_curated_and_read_only(example_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    async with stdio_client(example_env["INVENTORY_URL"], tmp_path) as client:
        assert client.instructions is not None
        assert client.instructions.startswith("Read-only access to the inventory service.")
        assert client.server_info is not None and client.server_info.name == "inventory"
        check_tool_listing(await client.list_tools())


async def test_get_item_and_list_items(example_env: dict[str, str], tmp_path: Path) -> None:
    assert example_env["INVENTORY_TOKEN"] == TOKEN  # the backend demands this bearer token
    async with stdio_client(example_env["INVENTORY_URL"], tmp_path) as client:
        before = len(seen)
        result = await client.call_tool("get_item", {"sku": "SKU-1042"})
        assert not result.is_error
        check_item(result.structured_content)
        assert_no_leaks(result_text(result))
        check_backend_request(sent_since(seen, before), "/v1/items/SKU-1042",
                              {"expand": ["supplier"]})

        before = len(seen)
        result = await client.call_tool("list_items", {"in_stock": True})
        assert not result.is_error
        assert result.structured_content is not None
        items = result.structured_content["items"]
        assert [i["sku"] for i in items] == ["SKU-1042", "SKU-1044", "SKU-1045", "SKU-1046"]
        assert all(i["stock"] > 0 for i in items)
        assert all(set(i) == {"sku", "name", "stock", "price"} for i in items)
        assert result.structured_content["next_cursor"] is None
        assert_no_leaks(result_text(result))
        check_backend_request(sent_since(seen, before), "/v1/items",
                              {"in_stock": ["true"], "limit": ["20"]})

        # The renamed, repeated query parameter goes out under the backend's name.
        before = len(seen)
        result = await client.call_tool("list_items", {"tags": ["tools", "sale"], "limit": 2})
        assert result.structured_content is not None
        assert [i["sku"] for i in result.structured_content["items"]] == ["SKU-1043", "SKU-1045"]
        check_backend_request(sent_since(seen, before), "/v1/items",
                              {"tag": ["tools", "sale"], "limit": ["2"]})


async def test_errors_are_safe_and_the_server_keeps_serving(example_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    async with stdio_client(example_env["INVENTORY_URL"], tmp_path) as client:
        before = len(seen)
        result = await client.call_tool("get_item", {"sku": "../etc"}, raise_on_error=False)
        assert error_text(result) == BAD_SKU
        assert len(seen) == before, "an invalid argument must not reach the backend"

        result = await client.call_tool("get_item", {"itemId": "SKU-1042"},
                                        raise_on_error=False)
        assert error_text(result) == ("Invalid arguments for get_item: unknown argument(s) "
                                      "'itemId'; the tool takes sku; 'sku' is a required "
                                      "argument")
        assert len(seen) == before

        result = await client.call_tool("get_item", {"sku": "SKU-9999"}, raise_on_error=False)
        assert error_text(result) == NOT_FOUND_ITEM
        assert SECRET_IN_404 not in result_text(result)
        assert len(seen) == before + 1
        check_backend_request(sent_since(seen, before), "/v1/items/SKU-9999",
                              {"expand": ["supplier"]})

        result = await client.call_tool("get_item", {"sku": "SKU-1042"})
        assert not result.is_error
        check_item(result.structured_content)

    log = (tmp_path / "stderr.log").read_text(errors="replace")
    assert SECRET_IN_404 not in log
    assert TOKEN not in log


def test_serve_without_the_token_fails_cleanly(backend_url: str, tmp_path: Path) -> None:
    env = child_env(backend_url)
    del env["INVENTORY_TOKEN"]
    proc = subprocess.run(serve_command(), env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"{CONFIG}: backend.auth.bearer_env: environment variable 'INVENTORY_TOKEN' " \
           "is not set" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_with_a_missing_config_fails_cleanly(backend_url: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "facade", "serve", "--config", str(tmp_path / "nope.yaml")],
        env=child_env(backend_url), cwd=tmp_path, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert f"{tmp_path / 'nope.yaml'}: file not found" in proc.stderr
    assert "Traceback" not in proc.stderr
