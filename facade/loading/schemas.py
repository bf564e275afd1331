"""Turn OpenAPI schemas (3.0 dialect or 3.1) into self-contained JSON Schema 2020-12.

References are inlined, because several MCP clients cannot follow `$ref`. A schema that
refers to itself (directly or through others) is emitted once under `$defs` and referred
to with `#/$defs/Name`, so recursion never expands forever. Beyond `MAX_REF_DEPTH` nested
references a schema is cut to `{}` (accepts anything) with a note in its description:
some real specs (Stripe's, for one) would otherwise inline megabytes per tool.

Even within that depth a wide spec can produce a schema of a megabyte (Stripe's expandable
objects each hold dozens of others). `fit_schema` keeps a tool under a byte budget
(`MAX_TOOL_BYTES`): it finds the deepest nesting level at which the schema still fits and
collapses every large subschema below it to its type and description, with a note.

`fit_schema` works on a schema already built. For an output schema that would be huge, the
loader rather builds only what fits: a converter given a `limit` collapses, as it goes, what
lies at that nesting depth or deeper (keeping small subschemas whole), and one given an
`allowance` gives up (`OverBudget`) once its estimate of the bytes produced (each node's
description plus a fixed overhead: about three quarters of the real size) passes it. Trying
deeper limits until one does not fit costs a few times the budget, not the megabytes a
full expansion of Stripe's expandable objects would (see `facade.loading.outputs._fit_by_limit`).

Input schemas keep validation keywords (they are enforced before a request is sent).
Output schemas describe shape only: types, properties, items, descriptions; no
`required`, `enum`, bounds or `additionalProperties: false`, because a backend that
drifts from its spec must not make an MCP client reject an otherwise good result.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, NamedTuple

from facade.loading.refs import RefResolver

__all__ = ["MAX_REF_DEPTH", "MAX_TOOL_BYTES", "Fitted", "OverBudget", "SchemaConverter",
           "budget_note", "fit_schema", "json_size"]

MAX_REF_DEPTH = 8
MAX_TOOL_BYTES = 64 * 1024
# Below the cut, subschemas up to this size stay whole: collapsing a `{amount, currency}`
# pair saves nothing and loses what a client most needs to read a result.
_SMALL_BYTES = 512

Mode = Literal["input", "output"]
_INTEGER_FORMATS = {"int32": 32, "int64": 64}

_ANNOTATIONS = ("title", "description", "default", "format", "deprecated", "examples",
                "contentMediaType", "contentEncoding")
_VALIDATION = ("enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum",
               "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems",
               "maxItems", "uniqueItems", "minProperties", "maxProperties", "required")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMAS = ("items", "not", "contains", "if", "then", "else", "propertyNames")


class OverBudget(Exception):
    """A converter produced more than its `allowance`."""


def budget_note(max_bytes: int) -> str:
    return f"(not expanded: the tool's schema would exceed {max_bytes // 1024} KB)"


class SchemaConverter:
    """Converts schemas of one document; collects `$defs` for recursive ones.

    With a `limit`, what is nested that deep or deeper is collapsed to its type and
    description (with `note`) unless it is small; `collapsed` counts how often. With an
    `allowance`, conversion raises `OverBudget` past about that many bytes of output.
    """

    def __init__(self, resolver: RefResolver, *, version: str, mode: Mode,
                 limit: int | None = None, allowance: int | None = None,
                 note: str = "") -> None:
        self.resolver = resolver
        self.openapi30 = version == "3.0"
        self.mode = mode
        self.defs: dict[str, Any] = {}
        self.limit = limit
        self.note = note
        self.collapsed = 0
        self._allowance = allowance
        self._spent = 0
        self._depth = 0
        self._def_names: dict[str, str] = {}  # ref key → name in $defs
        self._stack: list[str] = []
        self._recursive: set[str] = set()

    def convert(self, schema: Any, base: Path) -> dict[str, Any]:
        """One schema, converted. Call `bundle` on the root you finally emit."""
        if self.limit is not None and self._depth >= self.limit and isinstance(schema, dict) \
                and not _COMPOUND.isdisjoint(schema):
            return self._collapse(schema, base)
        return self._convert(schema, base)

    def _convert(self, schema: Any, base: Path) -> dict[str, Any]:
        if schema is True or schema is None:
            return {}
        if schema is False:
            return {"not": {}}
        if not isinstance(schema, dict):
            return {}
        if isinstance(schema.get("$ref"), str):
            return self._ref(schema, base)
        return self._node(schema, base)

    def bundle(self, root: dict[str, Any]) -> dict[str, Any]:
        """Attach the collected `$defs` to `root` (those it still refers to, when some
        were collapsed away)."""
        defs = self.defs
        if self.collapsed:
            used, _ = _def_depths(root, defs)
            defs = {name: value for name, value in defs.items() if name in used}
        if defs:
            return {**root, "$defs": dict(defs)}
        return root

    def _child(self, schema: Any, base: Path) -> dict[str, Any]:
        self._depth += 1
        try:
            return self.convert(schema, base)
        finally:
            self._depth -= 1

    def _collapse(self, schema: dict[str, Any], base: Path) -> dict[str, Any]:
        """A subschema at the limit: whole when it converts small and without recursion,
        else its type, title and description with the note."""
        allowance, spent, limit = self._allowance, self._spent, self.limit
        self._allowance, self._spent, self.limit = _SMALL_BYTES, 0, None
        try:
            small: dict[str, Any] | None = self._convert(schema, base)
        except OverBudget:
            small = None
        finally:
            self._allowance, self._spent, self.limit = allowance, spent + self._spent, limit
        if small is not None and _small(small, _SMALL_BYTES) >= 0:
            return small
        self.collapsed += 1
        target = schema
        if isinstance(schema.get("$ref"), str):  # resolve() follows chains of refs
            found, _, _ = self.resolver.resolve(schema["$ref"], base)
            target = found if isinstance(found, dict) else {}
        stub = self._nullable(target, {k: target[k] for k in ("type", "title") if k in target})
        text = schema.get("description", target.get("description"))
        stub["description"] = f"{text} {self.note}" if isinstance(text, str) and text \
            else self.note
        return stub

    def _spend(self, schema: dict[str, Any]) -> None:
        if self._allowance is None:
            return
        text = schema.get("description")
        self._spent += 24 + (len(text) if isinstance(text, str) else 0)
        if self._spent > self._allowance:
            raise OverBudget

    def _ref(self, schema: dict[str, Any], base: Path) -> dict[str, Any]:
        target, where, key = self.resolver.resolve(schema["$ref"], base)
        siblings: dict[str, Any] = {k: schema[k] for k in ("description", "title")
                                    if k in schema}
        if self._def_names.get(key) in self.defs:
            # Already emitted under $defs: refer to it rather than convert it again.
            return {"$ref": f"#/$defs/{self._def_names[key]}", **siblings}
        if key in self._stack:
            self._recursive.add(key)
            return {"$ref": f"#/$defs/{self._name_for(key)}", **siblings}
        if len(self._stack) >= MAX_REF_DEPTH:
            return {"description": f"(not expanded: nested deeper than {MAX_REF_DEPTH} "
                    "references)", **siblings}
        self._stack.append(key)
        try:
            out = self.convert(target, where)
        finally:
            self._stack.pop()
        if key in self._recursive:
            self.defs[self._name_for(key)] = out
            return {"$ref": f"#/$defs/{self._name_for(key)}", **siblings}
        return {**out, **siblings}

    def _name_for(self, key: str) -> str:
        if key not in self._def_names:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", key.rsplit("/", 1)[-1]) or "schema"
            name, n = base, 2
            while name in self._def_names.values():
                name, n = f"{base}_{n}", n + 1
            self._def_names[key] = name
        return self._def_names[key]

    def _node(self, schema: dict[str, Any], base: Path) -> dict[str, Any]:
        self._spend(schema)
        out: dict[str, Any] = {}
        if "type" in schema:
            out["type"] = schema["type"]
        for key in _ANNOTATIONS:
            if key in schema:
                out[key] = schema[key]
        if "example" in schema and "examples" not in out:
            out["examples"] = [schema["example"]]
        if self.mode == "input":
            self._validation(schema, out)
        for key in _SUBSCHEMA_LISTS:
            if isinstance(schema.get(key), list):
                target = "anyOf" if key == "oneOf" and self.mode == "output" else key
                out[target] = [self._child(s, base) for s in schema[key]]
        for key in _SUBSCHEMAS:
            if key in schema:
                out[key] = self._child(schema[key], base)
        self._properties(schema, base, out)
        return self._nullable(schema, out)

    def _validation(self, schema: dict[str, Any], out: dict[str, Any]) -> None:
        for key in _VALIDATION:
            if key in schema:
                out[key] = schema[key]
        # 3.0 (like JSON Schema draft 4) spells exclusive bounds as booleans beside
        # minimum/maximum. 3.1 documents use that spelling too, in schemas whose `$schema`
        # names an older draft, and 2020-12 only accepts numbers: convert it whatever the
        # version says.
        for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if isinstance(schema.get(flag), bool):
                out.pop(flag)
                if schema[flag] and bound in schema:
                    out[flag] = out.pop(bound)
        # `format` is an annotation to JSON Schema validators; the integer widths it names
        # are limits the backend enforces, so they become bounds the agent sees.
        fmt = schema.get("format")
        width = _INTEGER_FORMATS.get(fmt) if schema.get("type") == "integer" and \
            isinstance(fmt, str) else None
        if width is not None:
            low, high = -(2 ** (width - 1)), 2 ** (width - 1) - 1
            if not isinstance(out.get("minimum"), (int, float)) or out["minimum"] < low:
                if "exclusiveMinimum" not in out:
                    out["minimum"] = low
            if not isinstance(out.get("maximum"), (int, float)) or out["maximum"] > high:
                if "exclusiveMaximum" not in out:
                    out["maximum"] = high

    def _properties(self, schema: dict[str, Any], base: Path, out: dict[str, Any]) -> None:
        props = schema.get("properties")
        if isinstance(props, dict):
            dropped = "readOnly" if self.mode == "input" else "writeOnly"
            kept = {name: s for name, s in props.items()
                    if not (isinstance(s, dict) and s.get(dropped) is True)}
            out["properties"] = {str(n): self._child(s, base) for n, s in kept.items()}
            if isinstance(out.get("required"), list):
                out["required"] = [r for r in out["required"] if r in kept]
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = self._child(extra, base)
        elif extra is False and self.mode == "input":
            out["additionalProperties"] = False

    def _nullable(self, schema: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        if not (self.openapi30 and schema.get("nullable") is True):
            return out
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
            return out
        return {"anyOf": [out, {"type": "null"}]}


# -- the byte budget -------------------------------------------------------------------

_CHILD_MAPS = ("properties", "patternProperties", "$defs")
_CHILD_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_CHILDREN = ("items", "additionalProperties", "not", "contains", "if", "then", "else",
             "propertyNames")
_COMPOUND = frozenset((*_CHILD_MAPS, *_CHILD_LISTS, *_CHILDREN, "$ref"))


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
    at, high = _def_depths(root, defs)
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


def _def_depths(root: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, int], int]:
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
    for key in _COMPOUND.intersection(node):
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


def _small(node: Any, budget: int) -> int:
    """What is left of `budget` (bytes, roughly) after `node`; negative when it is over,
    or when `node` holds a `$ref` (which is as big as its target). Stops early."""
    if isinstance(node, dict):
        if "$ref" in node:
            return -1
        for key, value in node.items():
            budget = _small(value, budget - len(key) - 4)
            if budget < 0:
                return budget
        return budget
    if isinstance(node, list):
        for value in node:
            budget = _small(value, budget - 1)
            if budget < 0:
                return budget
        return budget
    return budget - (len(node) + 2 if isinstance(node, str) else 6)


def _cut(node: Any, limit: int, depth: int, note: str, refs: set[str]) -> Any:
    """`node` with its subschemas at `limit` or deeper collapsed, unless they are small;
    collects the `$ref`s that remain into `refs`."""
    if not isinstance(node, dict):
        return node
    compound = _COMPOUND.intersection(node)
    if depth >= limit and (not compound or _small(node, _SMALL_BYTES) >= 0):
        return node  # a leaf, or small enough to keep whole (and so without a `$ref`)
    if depth >= limit:
        stub = {k: node[k] for k in ("type", "title") if k in node}
        text = node.get("description")
        stub["description"] = f"{text} {note}" if isinstance(text, str) and text else note
        return stub
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
