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

`fit_schema` (`facade.loading.fitting`) works on a schema already built. For an output schema that would be huge, the
loader rather builds only what fits: a converter given a `limit` collapses, as it goes, what
lies at that nesting depth or deeper (keeping small subschemas whole), and one given an
`allowance` gives up (`OverBudget`) once its estimate of the bytes produced (each node's
description plus a fixed overhead: about three quarters of the real size) passes it. Trying
deeper limits until one does not fit costs a few times the budget, not the megabytes a
full expansion of Stripe's expandable objects would (see `facade.loading.outputs._fit_by_limit`).

Input schemas keep validation keywords (they are enforced before a request is sent).
Output schemas keep what an answer is checked against: types, properties, items,
`required`, `enum`, `const`, `format` and `additionalProperties: false`, besides the
descriptions; no bounds or patterns. `facade.loading.tolerance` derives from them the
documented schema (checked, never listed) and the published one (listed, and loose enough
that a backend drifting from its spec never makes an MCP client reject a good result).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from facade.loading.fitting import (
    COMPOUND,
    SMALL_BYTES,
    collapsed_stub,
    def_depths,
    small_left,
)
from facade.loading.refs import RefResolver

__all__ = ["MAX_REF_DEPTH", "MAX_TOOL_BYTES", "OverBudget", "SchemaConverter"]

MAX_REF_DEPTH = 8
MAX_TOOL_BYTES = 64 * 1024

Mode = Literal["input", "output"]
_INTEGER_FORMATS = {"int32": 32, "int64": 64}

_ANNOTATIONS = ("title", "description", "default", "format", "deprecated", "examples",
                "contentMediaType", "contentEncoding")
_VALIDATION = ("enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum",
               "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems",
               "maxItems", "uniqueItems", "minProperties", "maxProperties", "required")
_OUTPUT_CHECKS = ("required", "enum", "const")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMAS = ("items", "not", "contains", "if", "then", "else", "propertyNames")


class OverBudget(Exception):
    """A converter produced more than its `allowance`."""


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
                and not COMPOUND.isdisjoint(schema):
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
            used, _ = def_depths(root, defs)
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
        self._allowance, self._spent, self.limit = SMALL_BYTES, 0, None
        try:
            small: dict[str, Any] | None = self._convert(schema, base)
        except OverBudget:
            small = None
        finally:
            self._allowance, self._spent, self.limit = allowance, spent + self._spent, limit
        if small is not None and small_left(small, SMALL_BYTES) >= 0:
            return small
        self.collapsed += 1
        target = schema
        if isinstance(schema.get("$ref"), str):  # resolve() follows chains of refs
            found, _, _ = self.resolver.resolve(schema["$ref"], base)
            target = found if isinstance(found, dict) else {}
        keep = self._nullable(target, {k: target[k] for k in ("type", "title") if k in target})
        return collapsed_stub(target, schema.get("description", target.get("description")),
                              self.note, keep)

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
        else:
            out.update((k, schema[k]) for k in _OUTPUT_CHECKS if k in schema)
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
        elif extra is False:
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
