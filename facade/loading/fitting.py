"""Keep a converted schema within a byte budget by collapsing what lies deepest.

`fit_schema` finds the deepest nesting level at which the schema still fits and collapses
every large subschema below it to its type and description, with a note. Subschemas under
`SMALL_BYTES` stay whole: collapsing a `{amount, currency}` pair saves nothing and loses
what a client most needs to read a result.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

__all__ = ["SMALL_BYTES", "Fitted", "budget_note", "collapsed_stub", "fit_schema",
           "COMPOUND", "def_depths", "json_size", "small_left"]

SMALL_BYTES = 512


def budget_note(max_bytes: int) -> str:
    return f"(not expanded: the tool's schema would exceed {max_bytes // 1024} KB)"


_CHILD_MAPS = ("properties", "patternProperties", "$defs")
_CHILD_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_CHILDREN = ("items", "additionalProperties", "not", "contains", "if", "then", "else",
             "propertyNames")
COMPOUND = frozenset((*_CHILD_MAPS, *_CHILD_LISTS, *_CHILDREN, "$ref"))


def collapsed_stub(schema: dict[str, Any], description: Any, note: str,
                   keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """What stands for a collapsed subschema: its type and title (`keep` when given), and
    its description followed by `note`, which says why the rest is missing."""
    stub: dict[str, Any] = keep if keep is not None else {
        k: schema[k] for k in ("type", "title") if k in schema}
    stub["description"] = f"{description} {note}" if isinstance(description, str) and \
        description else note
    return stub


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON, as a `tools/list` answer carries it."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


class Fitted(NamedTuple):
    schema: dict[str, Any]
    depth: int | None  # where it was cut; None when it fitted as it was
    size: int  # the bytes of the schema before it was cut


def fit_schema(schema: dict[str, Any], max_bytes: int) -> Fitted:
    """`schema`, collapsed below some depth so that it takes at most `max_bytes`.

    A `$defs` entry counts as nested where it is first referenced. The root and its
    direct keywords are always kept, so a schema whose top level alone is over the budget
    comes back cut at depth 1 and still over it.
    """
    size = json_size(schema)
    if size <= max_bytes:
        return Fitted(schema, None, size)
    note = budget_note(max_bytes)
    root = {k: v for k, v in schema.items() if k != "$defs"}
    defs: dict[str, Any] = schema["$defs"] if isinstance(schema.get("$defs"), dict) else {}
    at, high = def_depths(root, defs)
    low = 1
    best = _cut_all(root, defs, at, low, note)
    while high - low > 1:  # the largest depth that fits: the size grows with the depth
        middle = (low + high) // 2
        candidate = _cut_all(root, defs, at, middle, note)
        if json_size(candidate) <= max_bytes:
            low, best = middle, candidate
        else:
            high = middle
    return Fitted(best, low, size)


def _cut_all(root: dict[str, Any], defs: dict[str, Any], at: dict[str, int], limit: int,
             note: str) -> dict[str, Any]:
    """`root` cut at `limit`, with the `$defs` entries it still refers to, cut alike."""
    refs: set[str] = set()
    out: dict[str, Any] = _cut(root, limit, 0, note, refs)
    kept: dict[str, Any] = {}
    todo = list(refs)
    while todo:
        name = todo.pop().removeprefix("#/$defs/")
        if name in defs and name not in kept:
            found: set[str] = set()
            kept[name] = _cut(defs[name], limit, at.get(name, 0), note, found)
            todo += found
    if kept:
        out["$defs"] = {name: kept[name] for name in defs if name in kept}
    return out


def def_depths(root: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, int], int]:
    """How deep each `$defs` entry is first used, counting from the root; and how deep the
    whole schema goes, entries counted where they are used."""
    depths: dict[str, int] = {}
    deepest = 0
    todo: list[tuple[Any, int]] = [(root, 0)]
    while todo:
        node, depth = todo.pop()
        refs: list[tuple[str, int]] = []
        deepest = max(deepest, _scan(node, depth, refs))
        for ref, ref_depth in refs:
            name = ref.removeprefix("#/$defs/")
            if name in defs and ref_depth < depths.get(name, ref_depth + 1):
                depths[name] = ref_depth
                todo.append((defs[name], ref_depth))
    return depths, deepest


def _scan(node: Any, depth: int, refs: list[tuple[str, int]]) -> int:
    """The depth of the deepest subschema under `node`; collects `$ref`s with their depth."""
    if not isinstance(node, dict):
        return depth
    if "$ref" in node and isinstance(node["$ref"], str):
        refs.append((node["$ref"], depth))
    deepest = depth
    for child in _children(node):
        deepest = max(deepest, _scan(child, depth + 1, refs))
    return deepest


def _children(node: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for key in COMPOUND.intersection(node):
        value = node[key]
        if key in _CHILD_MAPS:
            if isinstance(value, dict):
                found += value.values()
        elif key in _CHILD_LISTS:
            if isinstance(value, list):
                found += value
        elif isinstance(value, dict):
            found.append(value)
    return found


def small_left(node: Any, budget: int) -> int:
    """What is left of `budget` (bytes, roughly) after `node`; negative when it is over,
    or when `node` holds a `$ref` (which is as big as its target). Stops early."""
    if isinstance(node, dict):
        if "$ref" in node:
            return -1
        for key, value in node.items():
            budget = small_left(value, budget - len(key) - 4)
            if budget < 0:
                return budget
        return budget
    if isinstance(node, list):
        for value in node:
            budget = small_left(value, budget - 1)
            if budget < 0:
                return budget
        return budget
    return budget - (len(node) + 2 if isinstance(node, str) else 6)


def _cut(node: Any, limit: int, depth: int, note: str, refs: set[str]) -> Any:
    """`node` with its subschemas at `limit` or deeper collapsed, unless they are small;
    collects the `$ref`s that remain into `refs`."""
    if not isinstance(node, dict):
        return node
    compound = COMPOUND.intersection(node)
    if depth >= limit and (not compound or small_left(node, SMALL_BYTES) >= 0):
        return node  # a leaf, or small enough to keep whole (and so without a `$ref`)
    if depth >= limit:
        return collapsed_stub(node, node.get("description"), note)
    if isinstance(node.get("$ref"), str):
        refs.add(node["$ref"])
    out = dict(node)
    for key in compound:
        value = node[key]
        if key in _CHILD_MAPS:
            if isinstance(value, dict):
                out[key] = {n: _cut(s, limit, depth + 1, note, refs) for n, s in value.items()}
        elif key in _CHILD_LISTS:
            if isinstance(value, list):
                out[key] = [_cut(s, limit, depth + 1, note, refs) for s in value]
        elif isinstance(value, dict):
            out[key] = _cut(value, limit, depth + 1, note, refs)
    return out
