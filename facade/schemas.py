"""Turn OpenAPI schemas (3.0 dialect or 3.1) into self-contained JSON Schema 2020-12.

References are inlined, because several MCP clients cannot follow `$ref`. A schema that
refers to itself (directly or through others) is emitted once under `$defs` and referred
to with `#/$defs/Name`, so recursion never expands forever. Beyond `MAX_REF_DEPTH` nested
references a schema is cut to `{}` (accepts anything) with a note in its description:
some real specs (Stripe's, for one) would otherwise inline megabytes per tool.

Input schemas keep validation keywords (they are enforced before a request is sent).
Output schemas describe shape only: types, properties, items, descriptions; no
`required`, `enum`, bounds or `additionalProperties: false`, because a backend that
drifts from its spec must not make an MCP client reject an otherwise good result.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from facade.refs import RefResolver

__all__ = ["MAX_REF_DEPTH", "SchemaConverter"]

MAX_REF_DEPTH = 8

Mode = Literal["input", "output"]

_ANNOTATIONS = ("title", "description", "default", "format", "deprecated", "examples",
                "contentMediaType", "contentEncoding")
_VALIDATION = ("enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum",
               "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems",
               "maxItems", "uniqueItems", "minProperties", "maxProperties", "required")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMAS = ("items", "not", "contains", "if", "then", "else", "propertyNames")


class SchemaConverter:
    """Converts schemas of one document; collects `$defs` for recursive ones."""

    def __init__(self, resolver: RefResolver, *, version: str, mode: Mode) -> None:
        self.resolver = resolver
        self.openapi30 = version == "3.0"
        self.mode = mode
        self.defs: dict[str, Any] = {}
        self._def_names: dict[str, str] = {}  # ref key → name in $defs
        self._stack: list[str] = []
        self._recursive: set[str] = set()

    def convert(self, schema: Any, base: Path) -> dict[str, Any]:
        """One schema, converted. Call `bundle` on the root you finally emit."""
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
        """Attach the collected `$defs` to `root`."""
        if self.defs:
            return {**root, "$defs": dict(self.defs)}
        return root

    def _ref(self, schema: dict[str, Any], base: Path) -> dict[str, Any]:
        target, where, key = self.resolver.resolve(schema["$ref"], base)
        siblings = {k: schema[k] for k in ("description", "title") if k in schema}
        if key in self._def_names and key in self.defs:
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
                out[target] = [self.convert(s, base) for s in schema[key]]
        for key in _SUBSCHEMAS:
            if key in schema:
                out[key] = self.convert(schema[key], base)
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

    def _properties(self, schema: dict[str, Any], base: Path, out: dict[str, Any]) -> None:
        props = schema.get("properties")
        if isinstance(props, dict):
            dropped = "readOnly" if self.mode == "input" else "writeOnly"
            kept = {name: s for name, s in props.items()
                    if not (isinstance(s, dict) and s.get(dropped) is True)}
            out["properties"] = {str(n): self.convert(s, base) for n, s in kept.items()}
            if isinstance(out.get("required"), list):
                out["required"] = [r for r in out["required"] if r in kept]
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = self.convert(extra, base)
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
