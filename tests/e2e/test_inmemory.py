"""End to end in memory: `build_server(load(...))` behind fastmcp.Client, real backend."""

from __future__ import annotations

import json
from typing import Any

import inventory_backend
import jsonschema
from fastmcp import Client, FastMCP

from facade import build_server, load

from .conftest import (
    NOT_FOUND_CATEGORY,
    NOT_FOUND_ITEM,
    CONFIG,
    REDACTED_NAMES,
    SECRET_IN_404,
    assert_no_leaks,
    check_backend_request,
    check_tool_listing,
    error_text,
    result_text,
    sent_since,
    tool_json,
)

seen = inventory_backend.Handler.seen


def _server() -> FastMCP[Any]:
    return build_server(load(CONFIG))


async def _output_schema(client: Client[Any], name: str) -> dict[str, Any]:
    tool = next(t for t in await client.list_tools() if t.name == name)
    assert tool.output_schema is not None
    return tool.output_schema


async def test_tool_list_never_names_a_redacted_field(example_env: dict[str, str]) -> None:
    async with Client(_server()) as client:
        tools = await client.list_tools()
        check_tool_listing(tools)
        listing = json.dumps({"tools": [tool_json(t) for t in tools]})
        for name in (*REDACTED_NAMES, "email", "phone"):
            assert name not in listing
        # The unredacted response schema does carry them: the redaction is what removed them.
        spec = (CONFIG.parent / "specs" / "components" / "schemas.yaml").read_text()
        assert all(name in spec for name in REDACTED_NAMES)


async def test_get_item_stock_wraps_the_array(example_env: dict[str, str]) -> None:
    async with Client(_server()) as client:
        schema = await _output_schema(client, "get_item_stock")
        assert schema["x-fastmcp-wrap-result"] is True
        assert schema["required"] == ["result"]
        # Published schemas constrain nothing below the root; `items` says array.
        assert "type" not in schema["properties"]["result"]
        assert schema["properties"]["result"]["items"]["properties"]["on_hand"] == {
            "x-type": "integer"}

        before = len(seen)
        result = await client.call_tool("get_item_stock", {"sku": "SKU-1042"})
        expected = [{"warehouse": "north", "on_hand": 14, "reserved": 1},
                    {"warehouse": "south", "on_hand": 3, "reserved": 0}]
        assert result.structured_content == {"result": expected}
        jsonschema.validate(result.structured_content, schema)
        # The text block carries the bare array; fastmcp's client unwraps `data` too, with
        # the values as they came (a published schema has no types to coerce them to).
        assert json.loads(result.content[0].text) == expected  # type: ignore[union-attr]
        assert result.data == expected
        check_backend_request(sent_since(seen, before), "/v1/items/SKU-1042/stock", {})


async def test_get_category_recursive_schema(example_env: dict[str, str]) -> None:
    async with Client(_server()) as client:
        schema = await _output_schema(client, "get_category")
        assert "Category" in schema["$defs"]
        assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Category"}
        assert '"$ref": "#/$defs/Category"' in json.dumps(schema["$defs"]["Category"])
        jsonschema.Draft202012Validator.check_schema(schema)

        before = len(seen)
        result = await client.call_tool("get_category", {"category_id": 3})
        drills = result.structured_content
        assert drills is not None
        jsonschema.validate(drills, schema)
        assert drills["name"] == "Drills"
        assert drills["parent"]["name"] == "Power tools"
        assert drills["parent"]["parent"]["name"] == "Tools"
        assert drills["parent"]["parent"]["parent"] is None
        # Nothing to redact or drop here: the recursive answer passes through whole.
        assert drills == inventory_backend._category(3)
        assert drills["children"] == []
        check_backend_request(sent_since(seen, before), "/v1/categories/3", {})

        result = await client.call_tool("get_category", {"category_id": 1})
        assert result.structured_content is not None
        assert [c["name"] for c in result.structured_content["children"]] == ["Power tools"]
        assert result.structured_content["parent"] is None


async def test_in_memory_errors(example_env: dict[str, str]) -> None:
    async with Client(_server()) as client:
        before = len(seen)
        result = await client.call_tool("get_category", {"category_id": 0},
                                        raise_on_error=False)
        assert error_text(result) == ("Invalid arguments for get_category: category_id: 0 is "
                                      "less than the minimum of 1")
        result = await client.call_tool("get_category", {"category_id": "3"},
                                        raise_on_error=False)
        assert error_text(result) == ("Invalid arguments for get_category: category_id: '3' is "
                                      "not of type 'integer'")
        assert len(seen) == before

        result = await client.call_tool("get_category", {"category_id": 99},
                                        raise_on_error=False)
        assert error_text(result) == NOT_FOUND_CATEGORY
        result = await client.call_tool("get_item", {"sku": "SKU-9999"}, raise_on_error=False)
        assert error_text(result) == NOT_FOUND_ITEM
        assert SECRET_IN_404 not in result_text(result)
        assert len(seen) == before + 2

        result = await client.call_tool("get_item", {"sku": "SKU-1046"})
        assert result.structured_content is not None
        assert result.structured_content["name"] == "Screwdriver set"
        assert_no_leaks(result_text(result))
