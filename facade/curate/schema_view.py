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
from typing import Any, NamedTuple

from facade.errors import SpecError
from facade.loading.refs import RefResolver

__all__ = ["SchemaView", "SchemaViews", "Sub", "first_line"]

MAX_ENUM = 5  # enum values spelled out in a type; more are counted
_HTML_TAG = re.compile(r"</?(?:p|a|b|i|em|strong|code|span|br|ul|ol|li)\b[^<>]*/?>", re.I)
_MAX_MERGES = 64  # schemas merged into one view: a bound on pathological allOf nests


class Sub(NamedTuple):
    """A schema inside another: where it is, and the schemas it lies within (the `$ref`
    targets on the way down to it, to tell a cycle)."""

    schema: Any
    base: Path
    within: frozenset[str]


@dataclass
class SchemaView:
    """What one schema (with its `allOf`/`oneOf`/`anyOf` branches) says about its shape."""

    within: frozenset[str]  # the schemas this one lies within
    types: list[str] = field(default_factory=list)
    # Each `properties` mapping met, in order, with where it is: merged only when asked
    # for, as most views are read for their type alone (Stripe's objects have dozens).
    sources: list[tuple[dict[Any, Any], Path, frozenset[str]]] = field(default_factory=list)
    required: set[str] = field(default_factory=set)
    items: Sub | None = None
    values: Sub | None = None  # additionalProperties of a map
    enum: list[Any] | None = None
    description: str | None = None
    recursive: bool = False  # it is (or merges) a schema it lies within
    merges: int = 0
    labels: dict[int, str] = field(default_factory=dict)  # by depth, once read

    @property
    def properties(self) -> dict[str, Sub]:
        """The fields, in the order met; the first schema to name one gives it."""
        merged: dict[str, Sub] = {}
        for props, base, within in self.sources:
            for name, value in props.items():
                merged.setdefault(str(name), Sub(value, base, within))
        return merged

    @property
    def has_properties(self) -> bool:
        return any(props for props, _, _ in self.sources)

    @property
    def is_object(self) -> bool:
        return self.has_properties or "object" in self.types

    @property
    def only_array(self) -> bool:
        return self.items is not None and not self.has_properties and \
            [t for t in self.types if t != "null"] in (["array"], [])


class SchemaViews:
    """Reads schemas of one spec through its resolver."""

    def __init__(self, resolver: RefResolver) -> None:
        self.resolver = resolver
        # Operations share schemas (Stripe's `expand`, its expandable objects): each is
        # read and labelled once per place it lies within. Views are not changed once read.
        self._views: dict[tuple[int, Path, frozenset[str]], SchemaView] = {}

    def view(self, schema: Any, base: Path) -> SchemaView:
        """The view of `schema`, found in the file `base`."""
        return self.sub(Sub(schema, base, frozenset()))

    def sub(self, sub: Sub) -> SchemaView:
        """The view of a schema inside another (a property's, an array's items)."""
        key = (id(sub.schema), sub.base, sub.within)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = SchemaView(sub.within)
            self._read(view, sub.schema, sub.base, frozenset())
        return view

    def _read(self, view: SchemaView, schema: Any, base: Path, chain: frozenset[str]
              ) -> None:
        """Merge `schema` into `view`; `chain`: the `$ref` targets followed on the way to
        it from the view's own schema."""
        if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            try:
                schema, base, key = self.resolver.resolve(schema["$ref"], base)
            except SpecError:
                return  # a broken reference: nothing known here; loading it says why
            view.merges += 1
            view.recursive = view.recursive or key in view.within
            if key in chain or view.merges > _MAX_MERGES:
                return  # `A: {allOf: [$ref: A]}` merges nothing new
            chain = chain | {key}
        within = view.within | chain
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
            view.sources.append((schema["properties"], base, within))
        if isinstance(schema.get("required"), list):
            view.required.update(str(r) for r in schema["required"])
        if isinstance(schema.get("items"), dict) and view.items is None:
            view.items = Sub(schema["items"], base, within)
        if isinstance(schema.get("additionalProperties"), dict) and view.values is None:
            view.values = Sub(schema["additionalProperties"], base, within)
        if isinstance(schema.get("enum"), list) and view.enum is None:
            view.enum = schema["enum"]
        if isinstance(schema.get("description"), str) and view.description is None:
            view.description = schema["description"]
        for branch in schema.get("allOf") or []:
            self._read(view, branch, base, chain)
        self._alternatives(view, [*(schema.get("oneOf") or []), *(schema.get("anyOf") or [])],
                           base, chain)

    def _alternatives(self, view: SchemaView, branches: list[Any], base: Path,
                      chain: frozenset[str]) -> None:
        """`oneOf`/`anyOf`: every branch's fields, as one object's when all are objects."""
        if not branches:
            return
        subs = []
        for branch in branches:
            sub = SchemaView(view.within, merges=view.merges)
            self._read(sub, branch, base, chain)
            subs.append(sub)
            view.merges = sub.merges
            view.recursive = view.recursive or sub.recursive
            view.sources.extend(sub.sources)
            view.required.update(sub.required)
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
        if depth not in view.labels:
            view.labels[depth] = self._label(view, depth)
        return view.labels[depth]

    def _label(self, view: SchemaView, depth: int) -> str:
        types = [t for t in view.types if t != "null"] or view.types or ["any"]
        words = []
        for kind in types:
            if kind == "array" and view.items is not None and depth < 2:
                kind = "array of " + self.label(self.sub(view.items), depth + 1)
            elif kind == "object" and not view.has_properties and view.values is not None \
                    and depth < 2:
                kind = "map of " + self.label(self.sub(view.values), depth + 1)
            words.append(kind)
        text = " | ".join(words)
        if view.enum:
            shown = ", ".join(str(v) for v in view.enum[:MAX_ENUM])
            text += f" (one of: {shown})" if len(view.enum) <= MAX_ENUM else \
                f" (one of {len(view.enum)} values: {shown}, …)"
        recursive = view.recursive and not text.endswith("(recursive)")
        return text + " (recursive)" if recursive else text


def _add_types(view: SchemaView, types: list[str]) -> None:
    for kind in types:
        if kind not in view.types:
            view.types.append(kind)


def first_line(text: Any, limit: int = 100) -> str:
    """The first non-blank line of `text`, whitespace collapsed, cut at a word to `limit`
    characters with `…`; "" for anything that is not a string."""
    if not isinstance(text, str):
        return ""
    # Stripe writes `<p>Retrieves a Customer object.</p>`: tags go, line by line.
    lines = (" ".join(_HTML_TAG.sub("", ln).split()) for ln in text.splitlines())
    line = next((ln for ln in lines if ln), "")
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
