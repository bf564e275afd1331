"""The byte budget: a deep and wide output schema is collapsed below some depth to fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import facade
from facade.cli import tool_listing
from facade.schemas import MAX_TOOL_BYTES, fit_schema, json_size

STRIPE = (Path(__file__).resolve().parents[2] / "shared" / "specs-corpus"
          / "stripe__openapi@e0123a3" / "openapi" / "spec3.json")


def wide(depth: int, width: int = 6) -> dict[str, Any]:
    """An object `depth` levels deep, `width` properties at each level."""
    if depth == 0:
        return {"type": "string", "description": "a leaf"}
    return {"type": "object", "description": f"level {depth}",
            "properties": {f"p{i}": wide(depth - 1, width) for i in range(width)}}


def test_a_schema_within_budget_is_returned_as_it_is() -> None:
    schema = wide(2)
    fitted = fit_schema(schema, 64 * 1024)
    assert fitted.schema is schema and fitted.depth is None
    assert fitted.size == json_size(schema)


def test_deep_and_wide_is_collapsed_below_the_deepest_level_that_fits() -> None:
    schema = wide(6)  # 6^6 leaves: about 2 MB
    assert json_size(schema) > 1_000_000
    fitted = fit_schema(schema, 16 * 1024)
    assert fitted.depth is not None
    assert json_size(fitted.schema) <= 16 * 1024
    assert list(fitted.schema["properties"]) == [f"p{i}" for i in range(6)]
    stub = fitted.schema
    for _ in range(fitted.depth):
        stub = stub["properties"]["p0"]
    assert stub == {"type": "object", "description": f"level {6 - fitted.depth} (not expanded: "
                    "the tool's schema would exceed 16 KB)"}
    # One level deeper would not have fitted.
    assert json_size(fit_schema(schema, json_size(fitted.schema) - 1).schema) < json_size(
        fitted.schema)


def test_small_subschemas_below_the_cut_stay_whole() -> None:
    money = {"type": "object", "properties": {"amount": {"type": "number"},
                                              "currency": {"type": "string"}}}
    schema = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "price": money, "details": wide(4)}}}}}
    fitted = fit_schema(schema, 4 * 1024)
    assert fitted.depth is not None
    item = fitted.schema["properties"]["items"]["items"]
    assert item["properties"]["price"] == money
    assert "not expanded" in json.dumps(item["properties"]["details"])


def test_defs_count_where_they_are_used_and_unused_ones_go() -> None:
    deep = wide(4)
    deep["properties"]["p0"]["properties"]["p0"]["properties"]["p0"] = {"$ref": "#/$defs/leaf"}
    node = {"type": "object", "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
        "meta": deep}}
    schema = {"type": "object", "properties": {"root": {"$ref": "#/$defs/node"}},
              "$defs": {"node": node, "leaf": wide(3), "unused": wide(1)}}
    fitted = fit_schema(schema, 4 * 1024)
    assert fitted.depth is not None and fitted.depth < 5
    assert json_size(fitted.schema) <= 4 * 1024
    assert fitted.schema["properties"]["root"] == {"$ref": "#/$defs/node"}
    # `leaf` was only used inside what was collapsed; `unused` never was.
    assert list(fitted.schema["$defs"]) == ["node"]
    assert "not expanded" in json.dumps(fitted.schema["$defs"]["node"]["properties"]["meta"])


def test_a_stripe_tool_stays_under_the_budget(tmp_path: Path) -> None:
    """GetInvoicesInvoice was a 1.1 MB output schema; now the tool is under 64 KB."""
    config = tmp_path / "curation.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1, "spec": str(STRIPE), "backend": {"base_url": "http://127.0.0.1:9"},
        "tools": {"get_invoice": {"operation": "GetInvoicesInvoice"},
                  "get_customers": {"operation": "GetCustomers"}}}))
    built = facade.load(config)
    for tool in tool_listing(built):
        assert json_size(tool) <= MAX_TOOL_BYTES, tool["name"]
    messages = [w.message for w in built.warnings]
    assert len(messages) == 2
    assert all(" bytes; what is nested deeper than " in m for m in messages), messages


@pytest.mark.parametrize("budget", [2048, 8192, 32768])
def test_budget_is_met_whenever_the_top_level_fits(budget: int) -> None:
    fitted = fit_schema(wide(5, 5), budget)
    assert json_size(fitted.schema) <= budget
