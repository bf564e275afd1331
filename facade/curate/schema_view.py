"""A schema read for people: its type in a few words, and its fields two levels deep.

`facade init` lists under every operation the fields of its answer (`data[].id: string`) and
the types of its parameters, so that a curator can pick `response.include` paths and
`params` without opening the spec. That needs a schema's shape, not its validation rules:

- `$ref`s are followed with the spec's own resolver, across files;
- `allOf` branches are merged into one view;
- `oneOf`/`anyOf` branches that are all objects read as one object (their fields merged);
  mixed ones give a union type (`string | object`) whose object branches still give fields;
- a schema met again below itself (a cycle) is labelled `(recursive)` and not expanded,
  and a view never merges the same schema twice, so `A: {allOf: [$ref: A]}` ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facade.errors import SpecError
from facade.loading.refs import RefResolver

__all__ = ["SchemaView", "SchemaViews", "first_line"]

MAX_ENUM = 5  # enum values spelled out in a type; more are counted
_HTML_TAG = re.compile(r"</?(?:p|a|b|i|em|strong|code|span|br|ul|ol|li)\b[^<>]*/?>", re.I)
_MAX_MERGES = 64  # schemas merged into one view: a bound on pathological allOf nests


@dataclass
class SchemaView:
    """What one schema (with its `allOf`/`oneOf`/`anyOf` branches) says about its shape."""

    ancestors: frozenset[str]  # schemas on the path down to this one (cycle detection)
    types: list[str] = field(default_factory=list)
    properties: dict[str, tuple[Any, Path]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    items: tuple[Any, Path] | None = None
    values: tuple[Any, Path] | None = None  # additionalProperties of a map
    enum: list[Any] | None = None
    description: str | None = None
    recursive: bool = False
    merged: set[str] = field(default_factory=set)  # $ref targets read into this view

    @property
    def is_object(self) -> bool:
        return bool(self.properties) or "object" in self.types

    @property
    def only_array(self) -> bool:
        return self.items is not None and not self.properties and \
            [t for t in self.types if t != "null"] in (["array"], [])


class SchemaViews:
    """Reads schemas of one spec through its resolver."""

    def __init__(self, resolver: RefResolver) -> None:
        self.resolver = resolver

    def view(self, schema: Any, base: Path, parent: SchemaView | None = None) -> SchemaView:
        """The view of `schema` (found in `base`), as a child of `parent` when given."""
        ancestors = parent.ancestors | parent.merged if parent is not None else frozenset()
        view = SchemaView(ancestors)
        self._read(view, schema, base)
        return view

    def _read(self, view: SchemaView, schema: Any, base: Path) -> None:
        if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            try:
                schema, base, key = self.resolver.resolve(schema["$ref"], base)
            except SpecError:
                return  # a broken reference: nothing known here; loading it says why
            if key in view.merged or len(view.merged) >= _MAX_MERGES:
                return
            view.recursive = view.recursive or key in view.ancestors
            view.merged.add(key)
        if not isinstance(schema, dict):
            return
        declared = schema.get("type")
        types = [declared] if isinstance(declared, str) else \
            [t for t in declared if isinstance(t, str)] if isinstance(declared, list) else []
        if not types and isinstance(schema.get("properties"), dict):
            types = ["object"]
        if not types and isinstance(schema.get("items"), dict):
            types = ["array"]
        _add_types(view, types)
        if schema.get("nullable") is True:
            _add_types(view, ["null"])
        if isinstance(schema.get("properties"), dict):
            for name, sub in schema["properties"].items():
                view.properties.setdefault(str(name), (sub, base))
        if isinstance(schema.get("required"), list):
            view.required.update(str(r) for r in schema["required"])
        if isinstance(schema.get("items"), dict) and view.items is None:
            view.items = (schema["items"], base)
        if isinstance(schema.get("additionalProperties"), dict) and view.values is None:
            view.values = (schema["additionalProperties"], base)
        if isinstance(schema.get("enum"), list) and view.enum is None:
            view.enum = schema["enum"]
        if isinstance(schema.get("description"), str) and view.description is None:
            view.description = schema["description"]
        for branch in schema.get("allOf") or []:
            self._read(view, branch, base)
        self._alternatives(view, [*(schema.get("oneOf") or []), *(schema.get("anyOf") or [])],
                           base)

    def _alternatives(self, view: SchemaView, branches: list[Any], base: Path) -> None:
        """`oneOf`/`anyOf`: every branch's fields, as one object's when all are objects."""
        if not branches:
            return
        subs = []
        for branch in branches:
            sub = SchemaView(view.ancestors, merged=set(view.merged))
            self._read(sub, branch, base)
            subs.append(sub)
            view.recursive = view.recursive or sub.recursive
            view.merged |= sub.merged
            for name, value in sub.properties.items():
                view.properties.setdefault(name, value)
            if view.items is None:
                view.items = sub.items
        if all(sub.is_object for sub in subs):
            _add_types(view, ["object"])
        else:
            for sub in subs:
                _add_types(view, sub.types or ["any"])

    def label(self, view: SchemaView, depth: int = 0) -> str:
        """`string`, `array of object`, `map of integer`, `string | object`,
        `string (one of: a, b)`, with ` (recursive)` for a cycle."""
        types = [t for t in view.types if t != "null"] or view.types or ["any"]
        words = []
        for kind in types:
            if kind == "array" and view.items is not None and depth < 2:
                kind = "array of " + self.label(self.view(*view.items, parent=view), depth + 1)
            elif kind == "object" and not view.properties and view.values is not None \
                    and depth < 2:
                kind = "map of " + self.label(self.view(*view.values, parent=view), depth + 1)
            words.append(kind)
        text = " | ".join(words)
        if view.enum:
            shown = ", ".join(str(v) for v in view.enum[:MAX_ENUM])
            text += f" (one of: {shown})" if len(view.enum) <= MAX_ENUM else \
                f" (one of {len(view.enum)} values: {shown}, …)"
        return text + " (recursive)" if view.recursive else text


def _add_types(view: SchemaView, types: list[str]) -> None:
    for kind in types:
        if kind not in view.types:
            view.types.append(kind)


def first_line(text: Any, limit: int = 100) -> str:
    """The first non-blank line of `text`, whitespace collapsed, cut at a word to `limit`
    characters with `…`; "" for anything that is not a string."""
    if not isinstance(text, str):
        return ""
    text = _HTML_TAG.sub("", text)  # Stripe writes `<p>Retrieves a Customer object.</p>`
    line = next((" ".join(ln.split()) for ln in text.splitlines() if ln.strip()), "")
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
