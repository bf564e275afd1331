"""Property-based tests of shaping: whatever JSON the backend sends, no redacted key
survives anywhere (nested objects, arrays, maps, any letter case), in the structured
result or its text copy, and `include` keeps exactly what it names."""

from __future__ import annotations

import asyncio
import fnmatch
import json
from typing import Any

import httpx
import pytest
from fastmcp.exceptions import ToolError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facade.call.bodies import decode_json
from facade.call.tool import CuratedTool
from facade.call.upstream import Upstream
from facade.shaping import Shaper, parse_path
from facade.tools import BackendSettings, HTTPBinding, ToolDefinition

GLOBS = ["password", "*_token", "ssn"]
PATHS = ["account.owner.email", "items[].cost"]
# Keys drawn from a small alphabet, so redacted names (in any case) turn up often.
NAMES = ["id", "name", "password", "PassWord", "PASSWORD", "api_token", "Refresh_Token",
         "ssn", "SSN", "account", "Account", "owner", "OWNER", "email", "Email", "items",
         "cost", "COST", "tokens", "note"]
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | \
    st.text(max_size=8)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(NAMES), inner, max_size=5), max_leaves=40)


def keys_at_any_depth(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_at_any_depth(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_at_any_depth(v)}
    return set()


def values_at(value: Any, parts: list[str]) -> list[Any]:
    """Every value at a dotted path, arrays traversed, keys compared case-insensitively."""
    if isinstance(value, list):
        return [v for item in value for v in values_at(item, parts)]
    if not parts:
        return [value]
    if isinstance(value, dict):
        return [v for k, item in value.items() if k.lower() == parts[0].lower()
                for v in values_at(item, parts[1:])]
    return []


def path_has_key(value: Any, parts: list[str]) -> bool:
    """Whether the final key of `parts` exists under the path (case-insensitively)."""
    parents = values_at(value, parts[:-1])
    flat: list[Any] = []
    for p in parents:
        flat.extend(p if isinstance(p, list) else [p])
    return any(isinstance(p, dict) and any(k.lower() == parts[-1].lower() for k in p)
               for p in flat)


@given(JSON)
def test_no_redacted_key_survives(data: Any) -> None:
    shaped = Shaper.build(None, GLOBS + PATHS, None).apply(data, [])
    for key in keys_at_any_depth(shaped):
        assert not any(fnmatch.fnmatchcase(key.lower(), g) for g in GLOBS), key
    for path in PATHS:
        assert not path_has_key(shaped, parse_path(path)), path


def kept_paths(value: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every key path in a value, arrays traversed (no indices)."""
    if isinstance(value, list):
        return {p for item in value for p in kept_paths(item, prefix)}
    if isinstance(value, dict):
        out = set()
        for k, v in value.items():
            out.add((*prefix, k))
            out |= kept_paths(v, (*prefix, k))
        return out
    return set()


INCLUDE = st.lists(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(".".join),
                   min_size=1, max_size=4)


def exact_get(value: Any, parts: tuple[str, ...]) -> tuple[bool, Any]:
    """The value at a path of object keys only (exact case), if it is there."""
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


@given(JSON, INCLUDE)
def test_include_keeps_exactly_what_it_names(data: Any, include: list[str]) -> None:
    shaper = Shaper.build(include, [], None)
    shaped = shaper.apply(data, [])
    wanted = [tuple(parse_path(p)) for p in include]
    for path in kept_paths(shaped):
        # Every kept key lies on an included path, or below one (an included subtree).
        assert any(path[:len(w)] == w or w[:len(path)] == path for w in wanted), path
    for w in wanted:
        # Whatever the input holds at an included path is kept, unchanged.
        found, value = exact_get(data, w)
        if found and not any(w[:len(o)] == o and len(o) < len(w) for o in wanted):
            assert exact_get(shaped, w) == (True, value)
    assert shaper.apply(shaped, []) == shaped  # shaping twice changes nothing


DEFINITION = ToolDefinition(
    name="get_thing", description="Get a thing.",
    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
    output_schema={"type": "object", "properties": {"result": {}},
                   "required": ["result"], "x-fastmcp-wrap-result": True},
    wrap_result=True, annotations={"readOnlyHint": True},
    binding=HTTPBinding("GET", "/thing", ()), shaper=Shaper.build(None, GLOBS + PATHS, 3),
    operation="getThing")


async def _call_answered_with(answer: Any) -> Any:
    """One whole tool call whose backend answers `answer`: a tool and backend client of its
    own, so no example sees another's state."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(answer).encode(),
                              headers={"Content-Type": "application/json"})

    backend = BackendSettings("http://127.0.0.1:9/api", 5.0, {}, None, 1 << 20)
    upstream = Upstream(backend, environ={}, transport=httpx.MockTransport(handler))
    try:
        return await CuratedTool.from_definition(DEFINITION, upstream).run({})
    finally:
        await upstream.aclose()


# A whole tool call per example: its time varies with the machine's load, not the input.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_redaction_holds_in_the_tool_result_and_its_text_copy(data: Any) -> None:
    result = asyncio.run(_call_answered_with(data))
    structured = result.structured_content["result"]
    texts = [json.loads(result.content[0].text)]
    for value in (structured, *texts):
        for key in keys_at_any_depth(value):
            assert not any(fnmatch.fnmatchcase(key.lower(), g) for g in GLOBS), key
        for path in PATHS:
            assert not path_has_key(value, parse_path(path))
    assert texts[0] == structured  # the text copy is the same shaped data
    for block in result.content[1:]:  # truncation notes name paths, never values
        assert block.text.startswith("Note: ")


@pytest.mark.parametrize("body", [b"NaN", b'{"a": Infinity}', b"[-Infinity]"])
def test_nan_and_infinity_are_not_json(body: bytes) -> None:
    with pytest.raises(ToolError, match="is not valid JSON"):
        decode_json(DEFINITION, body)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 1


def _count(value: Any) -> int:
    children = value.values() if isinstance(value, dict) else value \
        if isinstance(value, list) else []
    return 1 + sum(map(_count, children))


@settings(max_examples=300, deadline=None)
@given(JSON, st.integers(1, 6), st.integers(1, 40))
def test_the_json_caps_hold_exactly(data: Any, max_depth: int, max_items: int) -> None:
    """Small answers skip the walk that enforces the caps; they must hold all the same."""
    body = json.dumps(data).encode()
    within = _depth(data) <= max_depth and _count(data) <= max_items
    if within:
        assert decode_json(DEFINITION, body, max_depth, max_items) == data
    else:
        with pytest.raises(ToolError, match="nested deeper than|values; narrow"):
            decode_json(DEFINITION, body, max_depth, max_items)


def test_the_json_caps_walk_past_the_shortcut() -> None:
    """Answers too large for the shortcut are walked; a scalar counts once, however long."""
    long_string = json.dumps("x" * 100).encode()
    assert decode_json(DEFINITION, long_string, 2, 10) == "x" * 100
    wide = json.dumps([[i] for i in range(20)]).encode()
    assert decode_json(DEFINITION, wide, 3, 41) == [[i] for i in range(20)]
    with pytest.raises(ToolError, match="more than 40 values"):
        decode_json(DEFINITION, wide, 3, 40)
    with pytest.raises(ToolError, match="nested deeper than 2 levels"):
        decode_json(DEFINITION, wide, 2, 1000)
