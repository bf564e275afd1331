"""The compiled fast paths of the output and argument checks never accept what jsonschema
would reject, and schemas outside what they share with JSON Schema 2020-12 keep the
jsonschema path."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import facade
from facade.call.checks import _fast_check
from facade.loading.spec import load_spec

from conftest import VENDORED_SPECS

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
@settings(deadline=None)  # compiles a check per example: time follows the machine's load
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


# -- the argument check's fast path ---------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
README_API = VENDORED_SPECS / "readmeio__oas-examples@060d4ff" / "3.0"
# Curations of real tools: the bundled example, every GET of two real documents copied
# into tests/data (ReadMe's own API and readmeio's parameter styles), and two benchmark
# curations over the corpus's GitHub and Stripe documents.
CONFIGS = [
    pytest.param(ROOT / "curation.yaml", 4, id="example"),
    pytest.param(README_API / "yaml" / "readme.yaml", 16, id="readme"),
    pytest.param(README_API / "json" / "parameters-style.json", 14, id="parameters-style"),
    pytest.param(ROOT / "bench/curations/github.yaml", 10, marks=pytest.mark.corpus,
                 id="github"),
    pytest.param(ROOT / "bench/curations/stripe.yaml", 10, marks=pytest.mark.corpus,
                 id="stripe"),
]
ODD = (st.sampled_from([True, False, 0, 1, -1, 1.0, 1.5, 2**31, 2**63, -(2**63) - 1, "",
                        "a", "1", "true", None, [], {}, ["a"], [1], {"a": 1}])
       | st.text(max_size=6) | st.integers())


@functools.cache
def fast_inputs(source: Path) -> dict[str, dict[str, Any]]:
    """The input schemas with a compiled check, by tool name, of a curation or of every GET
    of a spec; loaded when a test asks, never at import."""
    from facade.call.checks import FAST_INPUT_KEYWORDS as _FAST_INPUT_KEYWORDS

    config = source
    if source.suffix == ".json" or "paths" in yaml.safe_load(source.read_text()):
        config = Path(tempfile.mkdtemp()) / "curation.yaml"
        gets = [label for label in load_spec(source).by_label if label.startswith("GET ")]
        config.write_text(yaml.safe_dump({
            "version": 1, "spec": str(source), "backend": {"base_url": "http://127.0.0.1:9"},
            "tools": {f"op_{i}": {"operation": label} for i, label in enumerate(gets)}}))
    env = {"INVENTORY_URL": "http://127.0.0.1:9", "INVENTORY_TOKEN": "x" * 20}
    return {tool.name: tool.input_schema for tool in facade.load(config, environ=env).tools
            if _fast_check(tool.input_schema, _FAST_INPUT_KEYWORDS) is not None}


@pytest.mark.parametrize(("source", "tools"), CONFIGS)
def test_real_tools_have_a_fast_argument_check(source: Path, tools: int) -> None:
    # the fast path is not a path nobody takes: every one of these tools takes it
    assert len(fast_inputs(source)) == tools, sorted(fast_inputs(source))


@pytest.mark.parametrize(("source", "tools"), CONFIGS)
@settings(max_examples=400, deadline=None)  # a check compiled per example
@given(data=st.data())
def test_fast_argument_acceptance_implies_jsonschema_acceptance(
        source: Path, tools: int, data: st.DataObject) -> None:
    from facade.call.checks import FAST_INPUT_KEYWORDS as _FAST_INPUT_KEYWORDS

    inputs = fast_inputs(source)
    schema = inputs[data.draw(st.sampled_from(sorted(inputs)), label="tool")]
    names = [*schema.get("properties", {}), "unknown"]
    arguments = data.draw(st.dictionaries(st.sampled_from(names), ODD | JSON, max_size=4))
    fast = _fast_check(schema, _FAST_INPUT_KEYWORDS)
    assert fast is not None
    try:
        fast(arguments)
    except Exception:
        return
    assert jsonschema.Draft202012Validator(schema).is_valid(arguments), arguments


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"n": {"enum": [1, 2]}}},  # True == 1 in Python
    {"type": "object", "properties": {"n": {"const": 0}}},  # False == 0
    {"type": "object", "properties": {"s": {"enum": ["a", ["b"]]}}},
    {"type": "object", "properties": {"n": {"type": "number", "multipleOf": 0.1}}},
    {"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}},
])
def test_arguments_the_compiled_check_could_misjudge_keep_the_jsonschema_path(
        schema: dict[str, Any]) -> None:
    from facade.call.checks import FAST_INPUT_KEYWORDS as _FAST_INPUT_KEYWORDS

    assert _fast_check(schema, _FAST_INPUT_KEYWORDS) is None


def test_string_enums_and_bounds_take_the_fast_path() -> None:
    from facade.call.checks import FAST_INPUT_KEYWORDS as _FAST_INPUT_KEYWORDS

    schema = {"type": "object", "additionalProperties": False, "required": ["state"],
              "properties": {"state": {"enum": ["open", "closed", None]},
                             "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
                             "q": {"type": "string", "minLength": 1, "pattern": "^[a-z]+$"}}}
    fast = _fast_check(schema, _FAST_INPUT_KEYWORDS)
    assert fast is not None
    fast({"state": "open", "per_page": 5, "q": "abc"})
    for bad in ({"state": "merged"}, {"state": "open", "per_page": True},
                {"state": "open", "per_page": 101}, {"state": "open", "q": "A"},
                {"state": "open", "x": 1}, {}):
        with pytest.raises(Exception):
            fast(bad)
