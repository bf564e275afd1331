"""The compiled fast path of the output check never accepts what jsonschema would reject,
and schemas outside what it shares with JSON Schema 2020-12 keep the jsonschema path."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from facade.server import _fast_check

SCHEMAS = {
    "object": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}}}}}},
    "recursive": {"type": "object", "properties": {"node": {"$ref": "#/$defs/Node"}},
                  "$defs": {"Node": {"type": "object", "properties": {
                      "value": {"type": "number"},
                      "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}}},
    "wrapped": {"type": "object", "properties": {"result": {"anyOf": [
        {"type": "array", "items": {"type": "integer"}}, {"type": "string"}]}},
                "required": ["result"], "x-fastmcp-wrap-result": True},
}
NAMES = ["id", "name", "tags", "node", "value", "children", "result"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(NAMES), inner, max_size=4), max_leaves=25)


@pytest.mark.parametrize("name", SCHEMAS)
@given(data=JSON)
def test_fast_acceptance_implies_jsonschema_acceptance(name: str, data: Any) -> None:
    schema = SCHEMAS[name]
    fast = _fast_check(schema)
    assert fast is not None
    try:
        fast(data)
    except Exception:
        return  # rejected: jsonschema decides, so nothing to compare
    assert jsonschema.Draft202012Validator(schema).is_valid(data)


@pytest.mark.parametrize("schema", [
    {"type": "string", "enum": ["a"]},
    {"type": "array", "prefixItems": [{"type": "string"}]},
    {"type": "object", "properties": {"a": {"type": "integer", "minimum": 1}}},
    {"type": "object", "unevaluatedProperties": False},
])
def test_other_keywords_keep_the_jsonschema_path(schema: dict[str, Any]) -> None:
    assert _fast_check(schema) is None
