"""Load time: the two forms of a tool's output schema, from the converted response schema.

Real backends deviate from their specs (a `null` where a string is documented, `"42"` for
an integer, an unlisted enum value…), and an MCP client that validates `structuredContent`
against the tool's `outputSchema` would reject the whole result for one such field. So
each tool keeps two schemas, both already pruned like the results (include, redaction):

- The **documented** schema (`documented_schema`), never published: what the spec
  promises, reduced to what `facade.deviations` checks (`type`, `properties`, `items`,
  `additionalProperties`, `required`, `enum` of strings, `format` of the checked kinds,
  `allOf`/`anyOf`, `$ref`). No descriptions: it exists to be compiled into a validator.
  It describes the backend's body (never the `{"result": …}` wrapper), so the paths it
  reports read like `include` paths.
- The **published** schema (`published_schema`), listed in `tools/list`: the same shape
  and descriptions, but below the root it constrains nothing. A node's documented `type`
  and `format` become the advice keywords `x-type` and `x-format` (left out where
  `properties` or `items` already say object or array); `required`, `enum`, `const`,
  `default` and closed objects are dropped; `allOf` is merged into one object, and an
  `anyOf`/`oneOf` whose branches are all objects too. Whatever the backend sends at a
  documented place, a validating client accepts it.

`is_object` decides whether a result is an object (served as it is) or must be wrapped as
`{"result": …}`: `type: object`, or `properties` without a type, or an `allOf` with an
object branch, or an `anyOf`/`oneOf` whose non-null branches are all objects.
"""

from __future__ import annotations

from typing import Any

from facade.deviations import FORMATS

__all__ = ["documented_schema", "is_object", "published_schema", "wrapped_schema"]

_CHECKED = ("type", "required", "$ref")
_ADVICE = {"type": "x-type", "format": "x-format"}
_KEPT = ("title", "description", "examples", "deprecated", "readOnly", "writeOnly",
         "contentMediaType", "contentEncoding", "$ref")
_MAX_DEPTH = 64


# -- the documented schema -------------------------------------------------------------

def documented_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """What `schema` promises, reduced to the keywords answers are checked against."""
    out = _documented(schema, 0)
    defs = schema.get("$defs")
    if isinstance(defs, dict):
        out["$defs"] = {name: _documented(sub, 0) for name, sub in defs.items()}
    return out


def _documented(node: Any, depth: int) -> dict[str, Any]:
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return {}
    out: dict[str, Any] = {k: node[k] for k in _CHECKED if k in node}
    enum = node.get("enum", [node["const"]] if "const" in node else None)
    if isinstance(enum, list) and all(v is None or isinstance(v, str) for v in enum):
        out["enum"] = enum  # other enums are advice: `True == 1` would blur a fast check
    if node.get("format") in FORMATS:
        out["format"] = node["format"]
    if isinstance(node.get("properties"), dict):
        out["properties"] = {k: _documented(v, depth + 1)
                             for k, v in node["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            out[key] = _documented(node[key], depth + 1)
    if node.get("additionalProperties") is False:
        out["additionalProperties"] = False
    if isinstance(node.get("allOf"), list):
        out["allOf"] = [_documented(s, depth + 1) for s in node["allOf"]]
    branches = [*(node.get("anyOf") or []), *(node.get("oneOf") or [])]
    if branches:  # oneOf as anyOf: two matching branches are the spec's fault, not the answer's
        out["anyOf"] = [_documented(s, depth + 1) for s in branches]
    return out


# -- objects -----------------------------------------------------------------------------

def is_object(schema: Any, defs: dict[str, Any], depth: int = 0,
              seen: frozenset[str] = frozenset()) -> bool:
    """Whether `schema` documents an object (see the module docstring)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return False
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix("#/$defs/")
        return name not in seen and is_object(defs.get(name), defs, depth + 1, seen | {name})
    kinds = schema.get("type")
    if kinds is not None:
        named = {kinds} if isinstance(kinds, str) else set(kinds) - {"null"}
        return named == {"object"}
    if isinstance(schema.get("properties"), dict) or \
            isinstance(schema.get("additionalProperties"), dict):
        return True
    if any(is_object(s, defs, depth + 1, seen) for s in schema.get("allOf") or []):
        return True
    branches = [s for s in [*(schema.get("anyOf") or []), *(schema.get("oneOf") or [])]
                if not _is_null(s)]
    return bool(branches) and all(is_object(s, defs, depth + 1, seen) for s in branches)


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


# -- the published schema ----------------------------------------------------------------

def published_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (an object's) as listed: the root an object, nothing below constrained."""
    defs = _defs(schema)
    out = _loose(schema, defs, 0)
    out.pop("x-type", None)
    out = {"type": "object", **out}
    if defs:
        out["$defs"] = {name: _loose(sub, defs, 0) for name, sub in defs.items()}
    return out


def wrapped_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A result that is not an object, listed under `result` (fastmcp's convention)."""
    defs = _defs(schema)
    wrapped: dict[str, Any] = {"type": "object", "properties": {"result": _loose(
        schema, defs, 0)}, "required": ["result"], "x-fastmcp-wrap-result": True}
    if defs:
        wrapped["$defs"] = {name: _loose(sub, defs, 0) for name, sub in defs.items()}
    return wrapped


def _defs(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs")
    return defs if isinstance(defs, dict) else {}


def _loose(node: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    """One node as published: annotations and shape, advice for its type, no assertion."""
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return {}
    node = _merged(node, defs, depth)
    out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
    if isinstance(node.get("properties"), dict):
        out["properties"] = {k: _loose(v, defs, depth + 1)
                             for k, v in node["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            out[key] = _loose(node[key], defs, depth + 1)
    for key in ("anyOf", "allOf"):  # alternatives that are not all objects; recursive refs
        if isinstance(node.get(key), list):
            out[key] = [_loose(s, defs, depth + 1) for s in node[key]]
    for key, advice in _ADVICE.items():
        if key in node and not (key == "type" and _shape_says(node)):
            out[advice] = node[key]
    return out


def _shape_says(node: dict[str, Any]) -> bool:
    """Whether `properties` or `items` already tell the type the node documents."""
    kinds = node.get("type")
    named = {kinds} if isinstance(kinds, str) else set(kinds or ()) - {"null"}
    if named == {"object"}:
        return isinstance(node.get("properties"), dict) or \
            isinstance(node.get("additionalProperties"), dict)
    return named == {"array"} and isinstance(node.get("items"), dict)


def _merged(node: dict[str, Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    """`allOf` folded into the node; `anyOf`/`oneOf` of objects folded too, a null branch
    dropped (everything admits null once published); other alternatives kept as `anyOf`."""
    if "allOf" not in node and "anyOf" not in node and "oneOf" not in node:
        return node  # most nodes: nothing to fold, nothing to copy
    node = dict(node)
    parts = node.pop("allOf", None)
    if isinstance(parts, list):
        for part in parts:
            node = _fold(node, part, defs, depth)
    branches = [*(node.pop("anyOf", None) or []), *(node.pop("oneOf", None) or [])]
    branches = [b for b in branches if not _is_null(b)]
    if branches and all(is_object(b, defs, depth + 1) for b in branches):
        for branch in branches:
            node = _fold(node, branch, defs, depth)
    elif len(branches) == 1:
        node = _fold(node, branches[0], defs, depth)
    elif branches:
        node["anyOf"] = branches
    return node


def _fold(node: dict[str, Any], part: Any, defs: dict[str, Any], depth: int
          ) -> dict[str, Any]:
    """`part`'s shape added to `node`'s: properties united, the node's own text first.
    A `$ref` stays one: `$defs` holds only recursive schemas, which never inline."""
    if not isinstance(part, dict) or depth > _MAX_DEPTH:
        return node
    if "$ref" in part:
        if "$ref" not in node:
            return {**node, "$ref": part["$ref"]}
        return {**node, "allOf": [*node.get("allOf", []), {"$ref": part["$ref"]}]}
    part = _merged(part, defs, depth + 1)
    out = {**part, **node}
    props: dict[str, Any] = dict(node.get("properties") or {})
    for name, sub in (part.get("properties") or {}).items():
        mine = props.get(name)
        props[name] = {**sub, **mine} if isinstance(mine, dict) and isinstance(sub, dict) \
            else sub if mine is None else mine
    if props:
        out["properties"] = props
    return out
