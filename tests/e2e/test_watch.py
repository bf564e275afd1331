"""`facade serve --watch`, through real clients over stdio: an edit to curation.yaml
swaps the tool list in (clients with a session get notifications/tools/list_changed); an
invalid edit, or one that changes `backend:`, is rejected with a log line while the last good
version keeps serving, and the watcher goes on watching. Every wait is for a line of the
server's log (or a client-visible change), bounded by a deadline, never a fixed sleep."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from log_support import messages
from mcp import StdioServerParameters
from mcp.client import Client as SDKClient
from mcp.client.stdio import stdio_client

from .conftest import ROOT, child_env

pytestmark = pytest.mark.integration


def _workdir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    config = tmp_path / "curation.yaml"
    config.write_text((ROOT / "curation.yaml").read_text())
    return config


async def _until(predicate: Any, seconds: float = 15.0) -> None:
    with anyio.fail_after(seconds):
        while not await predicate():
            await anyio.sleep(0.2)


WATCHING = '"message":"watching '
REJECTED = "still serving the last good one:"
NEEDS_RESTART = ("curation.yaml changed backend: settings, which take effect on a "
                 "restart; still serving the last version")


async def _logged(log: Path, line: str, times: int = 1) -> None:
    """Wait until `line` is in the server's log `times` times (it only ever grows)."""
    async def there() -> bool:
        return log.read_text(errors="replace").count(line) >= times
    try:
        await _until(there)
    except TimeoutError:
        pytest.fail(f"{line!r} (x{times}) never came:\n{log.read_text(errors='replace')}")


def _server(config: Path, backend_url: str, log: Any) -> Any:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "facade", "serve", "--watch", "--config",
                                      str(config)],
        env=child_env(backend_url), cwd=str(config.parent))
    return stdio_client(params, errlog=log)


async def test_edits_are_swapped_in_and_announced(tmp_path: Path, backend_url: str) -> None:
    config = _workdir(tmp_path)
    changes: list[str] = []

    async def on_message(message: Any) -> None:
        method = getattr(message, "method", None) or getattr(
            getattr(message, "root", None), "method", None)
        if method:
            changes.append(method)

    log = tmp_path / "stderr.txt"
    with log.open("w") as errlog:
        async with SDKClient(_server(config, backend_url, errlog), mode="legacy",
                             message_handler=on_message) as client:
            await _edit_reject_and_edit_again(client, config, log, changes)


async def _edit_reject_and_edit_again(client: Any, config: Path, log: Path,
                                      changes: list[str]) -> None:
    await _logged(log, WATCHING)
    names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["list_items", "get_item", "get_item_stock", "get_category"]

    # A valid edit: a tool renamed, a description rewritten.
    text = config.read_text().replace("  get_category:\n", "  get_category_tree:\n")
    text = text.replace("Units on hand and reserved in each warehouse for one SKU.",
                        "Stock per warehouse for one SKU.")
    config.write_text(text)

    async def renamed() -> bool:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        return "get_category_tree" in tools and "get_category" not in tools

    await _until(renamed)
    await _until(lambda: _true("notifications/tools/list_changed" in changes))
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["get_item_stock"].description == "Stock per warehouse for one SKU."
    result = await client.call_tool("get_category_tree", {"category_id": 3})
    assert result.structured_content["name"] == "Drills"

    # An invalid edit: rejected, and the last good version keeps serving.
    config.write_text(text.replace("operation: getItem\n", "operation: getItm\n", 1))
    await _logged(log, REJECTED)
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert "get_item" in tools and "get_category_tree" in tools
    result = await client.call_tool("get_item", {"sku": "SKU-1042"})
    assert result.structured_content["sku"] == "SKU-1042"

    # The watcher goes on watching: a valid edit after the rejected one is served.
    config.write_text(text.replace("  get_category_tree:\n", "  get_category_path:\n"))
    await _logged(log, "reloaded curation.yaml: 4 tool(s), added "
                  "get_category_path, removed get_category_tree")
    names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["list_items", "get_item", "get_item_stock", "get_category_path"]
    result = await client.call_tool("get_category_path", {"category_id": 3})
    assert result.structured_content["name"] == "Drills"


async def _true(value: bool) -> bool:
    return value


def test_check_lines_for_a_rejected_version(tmp_path: Path, backend_url: str) -> None:
    """The log of a watching server shows check's exact lines for a bad edit."""
    config = _workdir(tmp_path)
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr, subprocess.Popen(
            [sys.executable, "-m", "facade", "serve", "--watch", "--config", str(config)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
            env=child_env(backend_url), cwd=tmp_path) as proc:
        try:
            deadline = time.monotonic() + 20
            while WATCHING not in log.read_text():  # the watcher has taken its first look
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            config.write_text(config.read_text() + "bogus: 1\n")
            while "still serving the last good one" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=20)
    text = log.read_text()
    said = messages(text)  # every line of the log is a JSON record, one per problem too
    assert "curation.yaml changed; the new version has 1 problem(s), still serving the last " \
        "good one:" in said
    assert any(m.startswith(f"{config}:") and m.endswith(": bogus: unknown key 'bogus'")
               for m in said)
    assert f"{config}:" in text and ": bogus: unknown key 'bogus'" in text


async def test_a_backend_change_is_rejected_and_watching_goes_on(
        tmp_path: Path, backend_url: str) -> None:
    """Single-API: an edit of `backend:` needs a restart, so it is rejected with a line
    saying so, the last version keeps serving, and a later valid edit is swapped in."""
    config = _workdir(tmp_path)
    original = config.read_text()
    assert "  timeout: 10\n" in original
    log = tmp_path / "stderr.txt"
    with log.open("w") as errlog:
        async with SDKClient(_server(config, backend_url, errlog), mode="legacy") as client:
            await _logged(log, WATCHING)
            config.write_text(original.replace("  timeout: 10\n", "  timeout: 11\n")
                              .replace("  get_category:\n", "  get_category_tree:\n"))
            await _logged(log, NEEDS_RESTART)
            names = [t.name for t in (await client.list_tools()).tools]
            assert names == ["list_items", "get_item", "get_item_stock", "get_category"]
            assert "reloaded" not in log.read_text()

            config.write_text(original.replace("  get_category:\n", "  get_category_tree:\n"))
            await _logged(log, "reloaded curation.yaml: 4 tool(s), added "
                          "get_category_tree, removed get_category")
            names = [t.name for t in (await client.list_tools()).tools]
            assert names == ["list_items", "get_item", "get_item_stock", "get_category_tree"]
            result = await client.call_tool("get_category_tree", {"category_id": 3})
            assert result.structured_content is not None
            assert result.structured_content["name"] == "Drills"
