"""Resources and prompts declared in the curation: checked at load like tools, served
through a real MCP client, with the same validation, shaping and redaction as tools."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError

from facade import CurationError, load
from facade.serve.server import build_server

ROOT = Path(__file__).resolve().parent.parent
Write = Callable[..., Path]

HEAD = """\
version: 1
spec: specs/inventory.yaml
backend: {base_url: "http://127.0.0.1:9/v1"}
tools:
  get_item:
    operation: getItem
    params: {itemId: {rename: sku}}
"""


async def test_resource_template_and_prompt_of_the_bundled_example(
        example_env: dict[str, str]) -> None:
    facade = load(ROOT / "curation.yaml")
    async with Client(build_server(facade)) as client:
        templates = await client.list_resource_templates()
        assert [(t.name, t.uri_template, t.mime_type) for t in templates] == [
            ("item", "inventory://items/{sku}", "application/json")]
        contents = await client.read_resource("inventory://items/SKU-1042")
        item = json.loads(contents[0].text)
        assert item["sku"] == "SKU-1042" and item["supplier"] == {"name": "Acme Tools"}
        text = contents[0].text
        for leak in ("internal_cost", "sync_token", "sales@acme"):
            assert leak not in text  # the same redaction as the tool
        with pytest.raises(MCPError, match="404"):
            await client.read_resource("inventory://items/SKU-9999")
        with pytest.raises(MCPError, match="Resource not found"):  # fastmcp's own screen
            await client.read_resource("inventory://items/..")
        with pytest.raises(MCPError, match="Invalid arguments for item"):  # facade
            await client.read_resource("inventory://items/\uff0e\uff0e")

        prompts = await client.list_prompts()
        assert [(p.name, [a.name for a in p.arguments or []]) for p in prompts] == [
            ("restock_check", ["sku"])]
        rendered = await client.get_prompt("restock_check", {"sku": "SKU-1044"})
        message = rendered.messages[0].content.text
        assert message.startswith("Use get_item and get_item_stock for SKU-1044.")


async def test_a_fixed_resource_without_variables(write_curation: Write,
                                                  example_env: dict[str, str]) -> None:
    path = write_curation(HEAD.replace(
        '"http://127.0.0.1:9/v1"}', '"${INVENTORY_URL}", auth: {bearer_env: INVENTORY_TOKEN}}'
    ) + """\
resources:
  drill:
    operation: getItem
    uri: inventory://items/drill
    params: {itemId: {value: SKU-1042}, X-Tenant: {value: acme}}
    response: {include: [sku, name]}
""")
    async with Client(build_server(load(path))) as client:
        resources = await client.list_resources()
        assert [str(r.uri) for r in resources] == ["inventory://items/drill"]
        contents = await client.read_resource("inventory://items/drill")
        assert json.loads(contents[0].text) == {"sku": "SKU-1042", "name": "Cordless drill"}


def _problems(path: Path) -> list[str]:
    with pytest.raises(CurationError) as info:
        load(path)
    return [line.split(": ", 1)[1] for line in info.value.format().splitlines()]


def test_resources_and_prompts_are_checked_like_tools(write_curation: Write) -> None:
    path = write_curation(HEAD + """\
resources:
  item:
    operation: getItem
    uri: inventory://items/{skuu}
    params: {itemId: {rename: sku}, X-Tenant: {value: acme}}
  stock:
    operation: GET /items/{itemId}/stock
    uri: inventory://stock
  gone:
    operation: getItm
    uri: inventory://x
  plus:
    operation: getItem
    uri: "inventory://items/{+itemId}"
  write:
    operation: deleteItem
    uri: inventory://delete/{itemId}
prompts:
  report:
    arguments: [{name: sku}, {name: unused}]
    tools: [get_itme]
    template: "Look up {sku} and {warehouse}."
  broken:
    template: "Unbalanced {sku"
""")
    problems = _problems(path)
    assert "resources.item.uri: {skuu} is not an argument of getItem (did you mean " \
        "'sku'?)" in problems
    assert "resources.item.uri: required argument(s) sku are not in the URI (add them " \
        "as {name}, or fix them with params: {p: {value: ...}})" in problems
    assert "resources.stock.uri: required argument(s) itemId, X-Tenant are not in the URI " \
        "(add them " \
        "as {name}, or fix them with params: {p: {value: ...}})" in problems
    assert any(p.startswith("resources.gone.operation: unknown operation 'getItm'")
               for p in problems)
    assert "resources.plus.uri: {+itemId} is not a plain variable (write {name}: URI " \
        "template operators (+ # . / ; ? &) are not supported)" in problems
    assert any(p.startswith("resources.write.operation: DELETE /items/{itemId} is not "
                            "read-only") for p in problems)
    assert "prompts.report.template: placeholder {warehouse} is not a declared argument " \
        "(declare it under arguments)" in problems
    assert "prompts.report.tools[0]: 'get_itme' is not a curated tool (did you mean " \
        "'get_item'?)" in problems
    assert any(p.startswith("prompts.broken.template: the template is not valid")
               for p in problems)
    assert "warning: prompts.report.arguments[1]: argument 'unused' is not used in the " \
        "template" in problems


def test_a_resource_uri_needs_a_scheme(write_curation: Write) -> None:
    path = write_curation(HEAD + "resources:\n  item:\n    operation: getItem\n"
                          "    uri: items/{itemId}\n")
    assert _problems(path) == [
        "resources.item.uri: String should match pattern '^[a-z][a-z0-9+.-]*://'"]
