"""The byte budget: a deep and wide output schema is collapsed below some depth to fit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import facade
from facade.cli import tool_listing
from facade.loading.fitting import fit_schema, json_size
from facade.loading.schemas import MAX_TOOL_BYTES, SchemaConverter

from conftest import SPECS_CORPUS

STRIPE = SPECS_CORPUS / "stripe__openapi@e0123a3" / "openapi" / "spec3.json"


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


@pytest.mark.corpus
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
    assert all(re.match(r"the output schema is over \d+ KB; what is nested deeper than \d+ "
                        r"level\(s\) is collapsed", m) for m in messages), messages


@pytest.mark.parametrize("budget", [2048, 8192, 32768])
def test_budget_is_met_whenever_the_top_level_fits(budget: int) -> None:
    fitted = fit_schema(wide(5, 5), budget)
    assert json_size(fitted.schema) <= budget


# -- building only what fits ----------------------------------------------------------


def layered_spec(tmp_path: Path, levels: int, width: int = 6,
                 extra: dict[str, Any] | None = None) -> Path:
    """A spec whose response nests `levels` components, `width` references each: fully
    expanded, width ** levels leaves."""
    schemas: dict[str, Any] = {"L0": {"type": "string", "description": "a leaf " * 4}}
    for level in range(1, levels + 1):
        schemas[f"L{level}"] = {
            "type": "object", "description": f"level {level}",
            "properties": {f"p{i}": {"$ref": f"#/components/schemas/L{level - 1}"}
                           for i in range(width)}}
    schemas["Top"] = {"type": "object", "properties": {
        "deep": {"$ref": f"#/components/schemas/L{levels}"}, **(extra or {})}}
    spec = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
            "paths": {"/things": {"get": {"operationId": "getThings", "responses": {"200": {
                "description": "ok", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Top"}}}}}}}},
            "components": {"schemas": schemas}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    config = tmp_path / "curation.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1, "spec": "spec.json", "backend": {"base_url": "http://127.0.0.1:9"},
        "tools": {"get_things": {"operation": "getThings"}}}))
    return config


def count_nodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the schema nodes every converter builds from now on."""
    counted = [0]
    node = SchemaConverter._node

    def counting(self: SchemaConverter, schema: dict[str, Any], base: Path) -> dict[str, Any]:
        counted[0] += 1
        return node(self, schema, base)

    monkeypatch.setattr(SchemaConverter, "_node", counting)
    return counted


def test_a_huge_output_schema_is_never_built_whole(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = layered_spec(tmp_path, levels=7)  # 6^7 = 279,936 leaves expanded
    counted = count_nodes(monkeypatch)
    built = facade.load(config)
    (tool,) = tool_listing(built)
    assert json_size(tool) <= MAX_TOOL_BYTES
    assert counted[0] < 20_000, counted[0]  # a full expansion is over 335,000 nodes
    (warning,) = built.warnings
    assert "what is nested deeper than" in warning.message
    # The cut keeps whole levels: every level above it lists all its properties.
    deep = tool["outputSchema"]["properties"]["deep"]
    while "properties" in deep:
        assert list(deep["properties"]) == [f"p{i}" for i in range(6)]
        deep = deep["properties"]["p3"]
    assert deep["description"].endswith("(not expanded: the tool's schema would exceed 64 KB)")
    assert deep["x-type"] == "object"  # advice only: published schemas constrain nothing


def test_an_output_schema_that_fits_is_built_once_and_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = layered_spec(tmp_path, levels=2)
    counted = count_nodes(monkeypatch)
    built = facade.load(config)
    (tool,) = tool_listing(built)
    assert not built.warnings
    assert counted[0] == 1 + 1 + 6 + 36  # Top, L2, 6 × L1, 36 × L0
    assert "not expanded" not in json.dumps(tool)


def test_small_parts_below_the_cut_stay_whole_when_built_to_fit(tmp_path: Path) -> None:
    money = {"type": "object", "properties": {"amount": {"type": "number"},
                                              "currency": {"type": "string"}}}
    config = layered_spec(tmp_path, levels=7, extra={"price": money})
    (tool,) = tool_listing(facade.load(config))
    schema = tool["outputSchema"]
    assert schema["properties"]["price"] == {"properties": {
        "amount": {"x-type": "number"}, "currency": {"x-type": "string"}}}
    assert "not expanded" in json.dumps(schema["properties"]["deep"])


def test_collapsed_recursion_leaves_no_unused_defs(tmp_path: Path) -> None:
    config = layered_spec(tmp_path, levels=6, extra={
        "tree": {"$ref": "#/components/schemas/Node"}})
    spec = json.loads((tmp_path / "spec.json").read_text())
    spec["components"]["schemas"]["Node"] = {"type": "object", "properties": {
        "name": {"type": "string"},
        "big": {"$ref": "#/components/schemas/L5"},
        "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tool,) = tool_listing(facade.load(config))
    schema = tool["outputSchema"]
    assert json_size(tool) <= MAX_TOOL_BYTES
    referenced = set(re.findall(r'"#/\$defs/([^"]+)"', json.dumps(schema)))
    assert set(schema.get("$defs", {})) == referenced
