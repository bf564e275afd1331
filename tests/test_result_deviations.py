"""Answers that deviate from their documented schema: classified by kind and JSON type,
never by value, and still accepted by the published output schema.

The classifier (`facade.deviations`) is checked against jsonschema as the reference, the
compiled fast check against the classifier, and the published schema against any JSON
value at any documented place (hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import facade
from deviating_backend import CASES, model
from facade.call.answers import AnswerCheck
from facade.call.checks import FAST_ANSWER_KEYWORDS, _fast_check
from facade.call.tool import CuratedTool
from facade.deviations import FORMATS, Deviation, deviations, json_type
from facade.loading.tolerance import documented_schema, is_object, published_schema
from facade.tools import ToolDefinition

ROOT = Path(__file__).resolve().parent.parent
DEVIATING = ROOT / "tests" / "data" / "deviating" / "curation.yaml"
TOOLS = {t.name: t for t in facade.load(DEVIATING, environ={
    "DEVIATING_URL": "http://127.0.0.1:9"}).tools}


def documented(name: str) -> dict[str, Any]:
    schema = TOOLS[name].documented_schema
    assert schema is not None
    return schema


# -- the classifier ---------------------------------------------------------------------

def test_a_conforming_answer_has_no_deviations() -> None:
    assert deviations(documented("get_model"), model("ok")) == []
    assert AnswerCheck(documented("get_model")).deviations(model("ok")) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_common_deviation_is_named_by_path_and_kind(case: str) -> None:
    path, kind = CASES[case][1]
    found = AnswerCheck(documented("get_model")).deviations(model(case))
    assert [(d.path, d.kind) for d in found] == [(path, kind)]
    # In a list, the path is an include path: no index, whichever item deviates.
    answer = {"object": "list", "data": [model("ok"), model(case), model(case)]}
    found = deviations(documented("list_models"), answer)
    assert [(d.path, d.kind) for d in found] == [(f"data[].{path}", kind)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_deviation_names_types_never_the_value(case: str) -> None:
    (found,) = deviations(documented("get_model"), model(case))
    changed = CASES[case][0]
    for value in changed.values():
        if value is not ... and value is not None:
            for leaf in (value.values() if isinstance(value, dict) else [value]):
                assert json.dumps(leaf) not in found.describe()
                assert str(leaf) not in found.describe()
    assert found.kind in found.describe()


def test_the_kinds_and_types_read_as_documented() -> None:
    (null,) = deviations(documented("get_model"), model("null_string"))
    assert null == Deviation("owned_by", "null", "string", "null")
    assert null.describe() == "owned_by: null where string is documented (null)"
    (typed,) = deviations(documented("get_model"), model("float_integer"))
    assert (typed.documented, typed.actual) == ("integer", "number")
    (extra,) = deviations(documented("get_model"), model("extra_property"))
    assert "tpm" not in extra.describe()  # a backend's keys may be data: never named
    # 1.0 is an integer to JSON Schema (the compiled check refuses it: the walk decides).
    assert AnswerCheck(documented("get_model")).deviations({**model("ok"), "created": 1.0}) == []


def test_anyof_is_judged_by_its_closest_branch() -> None:
    # GitHub-like: PrivateUser | PublicUser; a public user with `pushed_at: null` deviates
    # from PublicUser (null), not from PrivateUser (which also lacks `plan`).
    found = deviations(documented("get_user"), {"login": "octocat", "id": 1,
                                                "pushed_at": None})
    assert [(d.path, d.kind) for d in found] == [("pushed_at", "null")]


def test_booleans_are_not_numbers_and_enums_compare_as_json() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"},
                                               "e": {"enum": [1, "a"]}}}
    assert [(d.path, d.kind) for d in deviations(schema, {"n": True, "e": True})] == [
        ("n", "type"), ("e", "enum")]
    assert deviations(schema, {"n": 3, "e": 1.0}) == []


@pytest.mark.parametrize(("fmt", "good", "bad"), [
    ("date-time", "2024-05-13T10:00:00.5+02:00", "2024-05-13"),
    ("date", "2024-05-13", "13/05/2024"),
    ("time", "10:00:00Z", "10am"),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567"),
    ("email", "a@b.example", "nobody"),
    ("uri", "https://example.com/x", "/relative"),
    ("ipv4", "10.0.0.1", "10.0.0.256"),
    ("ipv6", "::1", "10.0.0.1"),
])
def test_checked_formats(fmt: str, good: str, bad: str) -> None:
    assert FORMATS[fmt](good) and not FORMATS[fmt](bad)
    schema = {"type": "string", "format": fmt}
    assert deviations(schema, good) == []
    assert [d.kind for d in deviations(schema, bad)] == ["format"]


def test_unknown_formats_are_advice_only() -> None:
    assert "format" not in documented_schema({"type": "string", "format": "hostname"})
    assert "enum" not in documented_schema({"type": "integer", "enum": [1, 2]})


# -- the classifier against jsonschema, the fast check against the classifier ----------

def _reference(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    checker = jsonschema.FormatChecker(formats=())
    for name, check in FORMATS.items():  # formats apply to strings only
        checker.checks(name)(lambda v, check=check: not isinstance(v, str) or check(v))
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


LEAF = (st.none() | st.booleans() | st.integers(-3, 2**40) | st.sampled_from([1.0, 1.5, -0.5])
        | st.sampled_from(["", "42", "0.5", "model", "engine", "2024-05-13T10:00:00Z",
                           "yesterday", "https://x.example/"]))
ANY_JSON = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["a", "read", "rpm", "tpm", "login"]), inner, max_size=3), max_leaves=8)


def _resolve(schema: Any, defs: dict[str, Any]) -> dict[str, Any]:
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        schema = defs.get(schema["$ref"].removeprefix("#/$defs/"), {})
    return schema if isinstance(schema, dict) else {}


def shaped_like(schema: Any, defs: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that follow `schema`'s shape (objects with its properties, arrays of its
    items), with any JSON value at each documented leaf, and now and then anywhere."""
    schema = _resolve(schema, defs)
    branches = [*(schema.get("allOf") or []), *(schema.get("anyOf") or []),
                *(schema.get("oneOf") or [])]
    props = dict(schema.get("properties") or {})
    for branch in branches:
        props.update(_resolve(branch, defs).get("properties") or {})
    items = schema.get("items") or next((_resolve(b, defs).get("items") for b in branches
                                         if _resolve(b, defs).get("items")), None)
    if depth > 5 or not (props or items):
        return ANY_JSON
    if props:
        inner: st.SearchStrategy[Any] = st.fixed_dictionaries(
            {}, optional={k: shaped_like(v, defs, depth + 1) for k, v in props.items()})
    else:
        inner = st.lists(shaped_like(items, defs, depth + 1), max_size=3)
    return st.one_of(inner, inner, inner, ANY_JSON)


FAST = {name: _fast_check(documented(name), FAST_ANSWER_KEYWORDS, FORMATS) for name in TOOLS}
REFERENCE = {name: _reference(documented(name)) for name in TOOLS}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(sorted(TOOLS)))
def test_the_classifier_agrees_with_jsonschema_and_the_fast_check(data: st.DataObject,
                                                                  name: str) -> None:
    schema = documented(name)
    value = data.draw(shaped_like(schema, schema.get("$defs", {})))
    found = deviations(schema, value)
    assert (not found) == REFERENCE[name].is_valid(value), found
    fast = FAST[name]
    assert fast is not None  # documented schemas always get the compiled check
    try:
        fast(value)
    except Exception:
        return
    assert found == []  # what the fast check accepts has no deviations


# -- the published schema ----------------------------------------------------------------

def _structured(definition: ToolDefinition, value: Any) -> dict[str, Any] | None:
    result = CuratedTool.from_definition(definition, None)._structured(value)
    return result.structured_content


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(sorted(TOOLS)))
def test_any_value_at_a_documented_place_is_accepted_unchanged(data: st.DataObject,
                                                               name: str) -> None:
    definition = TOOLS[name]
    schema = documented(name)
    value = data.draw(shaped_like(schema, schema.get("$defs", {})))
    shaped = definition.shaper.apply(value, [])
    if definition.validate == "strict" and deviations(schema, shaped):
        return  # strict tools refuse it instead (tested end to end)
    structured = _structured(definition, value)
    assert structured is not None and definition.output_schema is not None
    jsonschema.Draft202012Validator(definition.output_schema).validate(structured)
    # The values arrive unchanged: no coercion, nothing dropped but what the curation drops.
    unwrapped = definition.wrap_result or not isinstance(shaped, dict)
    assert structured == ({"result": shaped} if unwrapped else shaped)


def test_objects_are_objects() -> None:
    for name in ("get_model", "list_models", "get_user", "get_size"):
        assert not TOOLS[name].wrap_result, name
        schema = TOOLS[name].output_schema
        assert schema is not None and schema["type"] == "object"
        assert "allOf" not in json.dumps(schema) and "anyOf" not in json.dumps(schema)
    assert set(TOOLS["get_user"].output_schema["properties"]) == {  # type: ignore[index]
        "login", "id", "plan", "pushed_at"}  # both branches, merged
    assert TOOLS["list_tags"].wrap_result  # a real array stays wrapped


def test_published_schemas_assert_nothing_below_the_root() -> None:
    text = json.dumps([t.output_schema for t in TOOLS.values()])
    for keyword in ('"required": ["id"', '"enum"', '"format"', '"const"', '"default"',
                    '"additionalProperties": false', '"type": "string"'):
        assert keyword not in text, keyword
    owned_by = TOOLS["get_model"].output_schema["properties"]["owned_by"]  # type: ignore[index]
    assert owned_by == {"description": "The organization that owns it.", "x-type": "string"}


def test_is_object_and_merging() -> None:
    obj = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert is_object({"allOf": [obj, {"properties": {"b": {}}}]}, {})
    assert is_object({"anyOf": [obj, {"type": "null"}]}, {})
    assert not is_object({"anyOf": [obj, {"type": "string"}]}, {})
    assert not is_object({"type": "array", "items": obj}, {})
    merged = published_schema({"allOf": [obj, {"properties": {"b": {"type": "integer"}}}]})
    assert merged == {"type": "object", "properties": {"a": {"x-type": "string"},
                                                       "b": {"x-type": "integer"}}}
    # A recursive definition stays a reference: never inlined without end.
    node = {"type": "object", "properties": {"parent": {"anyOf": [
        {"$ref": "#/$defs/Node"}, {"type": "null"}]}}}
    published = published_schema({**node, "$defs": {"Node": node}})
    assert published["properties"]["parent"] == {"$ref": "#/$defs/Node"}
    jsonschema.Draft202012Validator(published).validate({"parent": {"parent": 7}})


def test_json_type() -> None:
    assert [json_type(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "null", "boolean", "integer", "number", "string", "array", "object"]


# -- real specs' tools (the shared corpus) ----------------------------------------------

CORPUS = ROOT.parent / "shared" / "specs-corpus"


def _corpus_tools() -> dict[str, ToolDefinition]:
    if not CORPUS.is_dir():
        return {}
    found = {}
    for name in ("github", "stripe", "twilio", "digitalocean"):
        config = ROOT / "bench" / "curations" / f"{name}.yaml"
        for tool in facade.load(config, environ={}).tools:
            found[f"{name}:{tool.name}"] = tool
    return found


CORPUS_TOOLS = _corpus_tools()


@pytest.mark.skipif(not CORPUS_TOOLS, reason=f"the shared specs corpus is not at {CORPUS}")
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(data=st.data(), name=st.sampled_from(sorted(CORPUS_TOOLS) or ["-"]))
def test_real_tools_accept_any_value_at_a_documented_place(data: st.DataObject,
                                                           name: str) -> None:
    definition = CORPUS_TOOLS[name]
    schema = definition.documented_schema
    assert schema is not None and definition.output_schema is not None
    value = data.draw(shaped_like(schema, schema.get("$defs", {})))
    structured = _structured(definition, value)
    jsonschema.Draft202012Validator(definition.output_schema).validate(structured)


# -- the curation keys ------------------------------------------------------------------

def test_validate_defaults_at_the_top_and_is_overridden_per_tool(tmp_path: Path) -> None:
    config = tmp_path / "curation.yaml"
    config.write_text(DEVIATING.read_text().replace("redact:", "response: {validate: strict}\n"
                      "redact:").replace("    response: {validate: strict}\n", "")
                      .replace("  get_user:\n    operation: getUser\n", "  get_user:\n    "
                               "operation: getUser\n    response: {validate: tolerant}\n"))
    (tmp_path / "openapi.yaml").write_text(DEVIATING.with_name("openapi.yaml").read_text())
    tools = {t.name: t.validate for t in facade.load(config, environ={
        "DEVIATING_URL": "http://127.0.0.1:9"}).tools}
    assert tools["get_user"] == "tolerant"
    assert {v for k, v in tools.items() if k != "get_user"} == {"strict"}
    assert TOOLS["get_model"].validate == "tolerant" and TOOLS["get_model_strict"].validate == \
        "strict"


def test_a_misspelt_validate_is_reported_with_a_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "curation.yaml"
    config.write_text(DEVIATING.read_text().replace("{validate: strict}", "{validat: strict}", 1))
    (tmp_path / "openapi.yaml").write_text(DEVIATING.with_name("openapi.yaml").read_text())
    with pytest.raises(facade.LoadError) as caught:
        facade.load(config, environ={"DEVIATING_URL": "http://127.0.0.1:9"})
    assert "unknown key 'validat'" in str(caught.value) and "validate" in str(caught.value)
    config.write_text(DEVIATING.read_text().replace("{validate: strict}", "{validate: lax}", 1))
    with pytest.raises(facade.LoadError, match="tolerant"):
        facade.load(config, environ={"DEVIATING_URL": "http://127.0.0.1:9"})


def test_a_lifted_body_property_leaves_the_parents_examples(tmp_path: Path) -> None:
    spec = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/search": {
        "post": {"operationId": "search", "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object", "properties": {"filter": {
                "type": "object", "example": {"owner": "tenant-4711", "limit": 5},
                "properties": {"owner": {"type": "string"}, "limit": {"type": "integer"}}}}}}}},
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "schema": {"type": "object"}}}}}}}}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    config = tmp_path / "curation.yaml"
    config.write_text(json.dumps({
        "version": 1, "spec": "spec.json", "read_only": False,
        "backend": {"base_url": "http://127.0.0.1:9"},
        "tools": {"search": {"operation": "search", "params": {
            "filter.owner": {"value": "acme"}}}}}))
    (tool,) = facade.load(config).tools
    assert tool.input_schema["properties"]["filter"]["examples"] == [{"limit": 5}]
    assert "tenant-4711" not in json.dumps(tool.input_schema)
