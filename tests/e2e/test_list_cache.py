"""`server.list_cache`: the SEP-2549 cache hint on the lists, as a 2026-07-28 client of the
official `mcp` SDK sees it over stdio (over HTTP: tests/e2e/test_listen.py), never on a
resource read (a backend call); none unless configured; and `facade check` refusing what
would be wrong, with `file:line:col`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import StdioServerParameters
from mcp.client import Client as SDKClient

from .conftest import ROOT, child_env

pytestmark = pytest.mark.integration

Write = Callable[..., Path]


def _params(config: Path, backend_url: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "facade", "serve", "--config", str(config)],
        env=child_env(backend_url), cwd=str(config.parent))


async def test_lists_carry_the_configured_hint_and_reads_do_not(
        write_curation: Write, backend_url: str) -> None:
    bundled = (ROOT / "curation.yaml").read_text()
    config = write_curation(bundled.replace(
        "server:\n", "server:\n  list_cache: {ttl: 90, scope: public}\n", 1))
    async with SDKClient(_params(config, backend_url)) as client:
        assert client.protocol_version == "2026-07-28"
        lists = [await client.list_tools(), await client.list_resources(),
                 await client.list_resource_templates(), await client.list_prompts()]
        assert [(r.ttl_ms, r.cache_scope) for r in lists] == [(90_000, "public")] * 4
        assert [t.name for t in lists[0].tools] == [
            "list_items", "get_item", "get_item_stock", "get_category"]

        read = await client.read_resource("inventory://items/SKU-1042")
        assert '"sku": "SKU-1042"' in read.contents[0].text  # type: ignore[union-attr]
        assert (read.ttl_ms, read.cache_scope) == (0, "private")  # immediately stale


async def test_no_hint_by_default(backend_url: str) -> None:
    async with SDKClient(_params(ROOT / "curation.yaml", backend_url)) as client:
        assert client.protocol_version == "2026-07-28"
        listing = await client.list_tools()
        assert len(listing.tools) == 4
        assert (listing.ttl_ms, listing.cache_scope) == (0, "private")


def _check(config: Path) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-m", "facade", "check", "--config",
                           config.name], cwd=config.parent, capture_output=True,
                          text=True, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr.splitlines()


HEAD = """\
version: 1
spec: specs/inventory.yaml
backend: {base_url: "http://127.0.0.1:9/v1"}
"""
SCOPED = """\
  auth:
    tokens: [{principal: ops, token_env: OPS_TOKEN, scopes: [stock]}]
tools:
  get_item:
    operation: getItem
  get_item_stock:
    operation: getItemStock
    scopes: [stock]
"""


def test_a_public_cache_is_refused_when_the_list_depends_on_the_caller(
        write_curation: Write) -> None:
    config = write_curation(HEAD + "server:\n  list_cache: {ttl: 60, scope: public}\n"
                            + SCOPED)
    code, lines = _check(config)
    assert code == 1
    assert lines[0] == (
        "curation.yaml:5:32: server.list_cache.scope: a public list cache lets one caller's "
        "tools/list be served to another, and here the list depends on the caller: "
        "tools.get_item_stock (`scopes` or `claims`) (use `scope: private`)")

    config.write_text(config.read_text().replace("scope: public", "scope: private"))
    code, lines = _check(config)
    assert code == 0, lines


@pytest.mark.parametrize(("cache", "message"), [
    ("{ttl: 0}", "server.list_cache.ttl: Input should be greater than or equal to 1"),
    ("{ttl: 60, scope: shared}",
     "server.list_cache.scope: Input should be 'private' or 'public'"),
    ("{scope: private}", "server.list_cache.ttl: missing required key 'ttl'"),
    ("{ttl: 1.5}", "server.list_cache.ttl: Input should be a valid integer"),
], ids=["zero-ttl", "unknown-scope", "no-ttl", "fractional-ttl"])
def test_a_malformed_list_cache_is_one_clear_line(write_curation: Write, cache: str,
                                                   message: str) -> None:
    config = write_curation(HEAD + f"server:\n  list_cache: {cache}\n"
                            "tools:\n  get_item: {operation: getItem}\n")
    code, lines = _check(config)
    assert code == 1
    assert len(lines) == 2 and lines[0].startswith("curation.yaml:5:"), lines
    assert lines[0].split(": ", 1)[1].startswith(message), lines


def test_a_public_cache_names_the_per_caller_tool_of_a_multi_api_curation(
        write_curation: Write) -> None:
    config = write_curation("""\
version: 1
server:
  list_cache: {ttl: 60, scope: public}
  auth:
    tokens: [{principal: ops, token_env: OPS_TOKEN, scopes: [stock]}]
apis:
  inventory:
    namespace: inv
    spec: specs/inventory.yaml
    backend: {base_url: "http://127.0.0.1:9/v1"}
    tools:
      get_item: {operation: getItem}
      get_item_stock: {operation: getItemStock, claims: {team: [ops]}}
""")
    code, lines = _check(config)
    assert code == 1
    assert lines[0] == (
        "curation.yaml:3:32: server.list_cache.scope: a public list cache lets one caller's "
        "tools/list be served to another, and here the list depends on the caller: "
        "apis.inventory.tools.get_item_stock (`scopes` or `claims`) (use `scope: private`)")
