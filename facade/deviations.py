"""How a JSON value deviates from a documented schema: one record per place and kind.

Real backends drift from their specs in a few common ways. `deviations(schema, value)`
walks a schema together with a value and names each departure:

    null              null where the schema does not admit it (objects and arrays too)
    type              another JSON type: "42" or 1.5 where an integer is documented
    enum              a value the enumeration does not list
    format            a value whose `format` does not parse (date-time, uuid, int32, …)
    missing_required  a required property is absent
    extra_property    a property the schema closes out (`additionalProperties: false`),
                      or, with `undocumented=True`, one it does not document

Two callers, one walk. At call time the schema is the strict one facade keeps beside each
tool (JSON Schema, `$ref`s into its `$defs`). `facade test` walks the spec's own schema
instead (OpenAPI 3.0 `nullable`, `$ref`s across files, through `resolve`) and asks for
each deviation's *site*: the file and JSON pointer of the schema that documents it, after
`$ref`s, so that `--suggest-overlay` can fix it where it is written.

A `Deviation` names the place as an `include` path (`data[].owned_by`; `*` for the values
of a map) and the documented and actual JSON *types*, never the value: operators may log
and count it. Closed-out properties are reported at the object that holds them, without
their names, since a backend's keys can be data too.

Imports nothing from facade; load time and call time may both use it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FORMATS", "KINDS", "Deviation", "Resolve", "Site", "deviations", "json_equal",
           "json_type"]

KINDS = ("null", "type", "enum", "format", "missing_required", "extra_property")
Site = tuple[Any, str]  # a schema's document (a file, say) and JSON pointer in it
Resolve = Callable[[str, Site], tuple[Any, Site]]  # ($ref, where it is) → (target, site)

_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
_OFFSET = r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"


def _matches(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda text: compiled.fullmatch(text) is not None


def _ip(version: int) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            return ipaddress.ip_address(text).version == version
        except ValueError:
            return False
    return check


# The formats facade checks in answers (strings only), each as the callable both the
# compiled validator and `deviations` use, so that the two always agree. A format not
# listed here (or in _INTEGER_FORMATS) is advice only: it is never checked.
FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _matches(f"{_DATE}[Tt ]{_TIME}{_OFFSET}"),
    "date": _matches(_DATE),
    "time": _matches(f"{_TIME}{_OFFSET}?"),
    "uuid": _matches(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"),
    "email": _matches(r"[^@\s]+@[^@\s]+"),
    "uri": _matches(r"[A-Za-z][A-Za-z0-9+.-]*:\S*"),
    "ipv4": _ip(4),
    "ipv6": _ip(6),
}
_INTEGER_FORMATS: dict[str, Callable[[int], bool]] = {
    "int32": lambda n: -2**31 <= n < 2**31,
    "int64": lambda n: -2**63 <= n < 2**63,
}
_MAX_DEPTH = 64  # schema nesting walked for one value (cycles through $ref stop here)


@dataclass(frozen=True)
class Deviation:
    """One way an answer departs from its documented schema, without its value."""

    path: str  # an include path: `data[].owned_by`; "" for the answer itself
    kind: str  # one of KINDS
    documented: str  # what the schema says, by JSON type: "string", "integer or null"…
    actual: str  # the JSON type found: "null", "string", … ("absent" when missing)
    site: Site | None = None  # the schema to fix (the object's, for the last two kinds)
    name: str | None = None  # the property, for missing_required and undocumented ones
    value: Any = field(default=None, compare=False, repr=False)  # for an enum fix; never shown

    def describe(self) -> str:
        """`owned_by: null where string is documented (null)`: no value, ever."""
        where = self.path or "the result"
        if self.kind == "missing_required":
            return f"{where}: required property is absent (missing_required)"
        if self.kind == "extra_property":
            return f"{where}: {self.actual} property the schema does not " \
                   f"{'document' if self.name is not None else 'allow'} (extra_property)"
        if self.kind in ("format", "enum"):
            return f"{where}: {self.actual} that is not {self.documented} ({self.kind})"
        return f"{where}: {self.actual} where {self.documented} is documented ({self.kind})"


def json_type(value: Any) -> str:
    """The JSON type of a decoded value: null, boolean, integer, number, string, array,
    object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def deviations(schema: Any, value: Any, limit: int | None = 32, *,
               resolve: Resolve | None = None, site: Site | None = None,
               nullable_keyword: bool = False, undocumented: bool = False,
               masked: str | None = None) -> list[Deviation]:
    """Every distinct (path, kind) in which `value` departs from `schema`, at most `limit`,
    in the order found. Empty when the value conforms.

    Args:
        resolve: follows a `$ref` from the site it is written at; by default only
            `#/$defs/…` of `schema` itself, without sites.
        site: where `schema` stands; given, each deviation carries its schema's site.
        nullable_keyword: OpenAPI 3.0's `nullable: true` (and Swagger 2.0's converted
            `x-nullable`) admits null; 3.1 lists "null" in `type` instead.
        undocumented: report each property an object's schema does not document, by name.
        masked: a placeholder that replaced a value before it was recorded (a fixture
            masks redacted values): a value equal to it is not compared.
    """
    if resolve is None:
        defs = schema.get("$defs") or {} if isinstance(schema, dict) else {}

        def resolve(ref: str, at: Site) -> tuple[Any, Site]:
            name = ref.removeprefix("#/$defs/")
            return (defs.get(name) if name != ref else None), at
    walker = _Walker(resolve, site is not None, limit, nullable_keyword, undocumented,
                     masked)
    walker.walk(schema, value, "", site or (None, ""), 0)
    return list(walker.found.values())


class _Walker:
    def __init__(self, resolve: Resolve, sites: bool, limit: int | None, nullable: bool,
                 undocumented: bool, masked: str | None) -> None:
        self.resolve, self.sites, self.limit = resolve, sites, limit
        self.nullable, self.undocumented, self.masked = nullable, undocumented, masked
        self.found: dict[tuple[str, str], Deviation] = {}

    def trial(self) -> _Walker:
        return _Walker(self.resolve, self.sites, self.limit, self.nullable,
                       self.undocumented, self.masked)

    def add(self, path: str, kind: str, documented: str, actual: str, site: Site,
            name: str | None = None, value: Any = None) -> None:
        if not self.full():
            self.found.setdefault((path, kind), Deviation(
                path, kind, documented, actual, site if self.sites else None, name, value))

    def full(self) -> bool:
        return self.limit is not None and len(self.found) >= self.limit

    def child(self, site: Site, *tokens: str | int) -> Site:
        if not self.sites:
            return site
        escaped = (str(t).replace("~", "~0").replace("/", "~1") for t in tokens)
        return site[0], "/".join((site[1], *escaped))

    def deref(self, schema: Any, site: Site) -> tuple[Any, Site]:
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        return self.resolve(ref, site) if isinstance(ref, str) else (schema, site)

    def walk(self, schema: Any, value: Any, path: str, site: Site, depth: int,
             extras: bool = True) -> None:
        nullable = self.nullable and isinstance(schema, dict) and \
            schema.get("nullable") is True  # 3.0: beside a $ref, it applies to the target
        schema, site = self.deref(schema, site)
        if not isinstance(schema, dict) or depth > _MAX_DEPTH or self.full() or \
                (self.masked is not None and value == self.masked):
            return
        types = self.types(schema, nullable)
        if value is None and (nullable or (types is not None and "null" in types)):
            return
        for i, branch in enumerate(schema.get("allOf") or ()):
            self.walk(branch, value, path, self.child(site, "allOf", i), depth + 1, False)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                self.any(key, schema[key], value, path, site, depth)
        if not self.scalar(schema, types, value, path, site):
            return
        if isinstance(value, dict):
            self.object(schema, value, path, site, depth, extras)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            inner, items = f"{path}[]", self.child(site, "items")
            for item in value:
                self.walk(schema["items"], item, inner, items, depth + 1)
                if self.full():
                    return

    def types(self, schema: dict[str, Any], nullable: bool) -> list[str] | None:
        kinds = schema.get("type")
        if kinds is None:
            return None
        types = [kinds] if isinstance(kinds, str) else [str(k) for k in kinds]
        if nullable or (self.nullable and schema.get("nullable") is True):
            types.append("null")
        enum = schema.get("enum")
        if not self.nullable and isinstance(enum, list) and None in enum:
            types.append("null")  # 3.1: an enum listing null admits it
        return types

    def any(self, key: str, branches: list[Any], value: Any, path: str, site: Site,
            depth: int) -> None:
        """An anyOf/oneOf: nothing when a branch fits, else the closest branch's findings:
        one of the value's type first, then one whose required properties are all there,
        then the one with the fewest findings."""
        best: tuple[tuple[int, int, int], dict[tuple[str, str], Deviation]] | None = None
        for i, branch in enumerate(branches):
            trial = self.trial()
            trial.walk(branch, value, path, self.child(site, key, i), depth + 1)
            if not trial.found:
                return
            rank = (int((path, "type") in trial.found or (path, "null") in trial.found),
                    sum(kind == "missing_required" for _, kind in trial.found),
                    len(trial.found))
            if best is None or rank < best[0]:
                best = (rank, trial.found)
        for found in (best[1] if best else {}).values():
            if not self.full():
                self.found.setdefault((found.path, found.kind), found)

    def scalar(self, schema: dict[str, Any], types: list[str] | None, value: Any,
               path: str, site: Site) -> bool:
        """Type, enum and format; False when the type is off (nothing below to check)."""
        if types is not None and not any(_is(value, k) for k in types):
            self.add(path, "null" if value is None else "type", " or ".join(types),
                     json_type(value), site)
            return False
        enum = schema.get("enum")
        if isinstance(enum, list) and enum and not any(json_equal(value, v) for v in enum):
            self.add(path, "enum", f"one of the {len(enum)} listed values",
                     json_type(value), site, value=value)
        fmt = schema.get("format")
        if isinstance(fmt, str):
            if isinstance(value, str):
                check = FORMATS.get(fmt)
                if check is not None and not check(value):
                    self.add(path, "format", f"a valid {fmt}", "string", site)
            elif isinstance(value, int) and not isinstance(value, bool):
                bounds = _INTEGER_FORMATS.get(fmt)
                if bounds is not None and not bounds(value):
                    self.add(path, "format", f"a valid {fmt}", "integer", site)
        return True

    def object(self, schema: dict[str, Any], value: dict[str, Any], path: str,
               site: Site, depth: int, extras: bool) -> None:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        for name in schema.get("required") or ():
            if isinstance(name, str) and name not in value:
                sub = self.deref(props.get(name), site)[0]
                kinds = self.types(sub, False) if isinstance(sub, dict) else None
                self.add(_join(path, name), "missing_required",
                         " or ".join(kinds) if kinds else "a value", "absent", site, name)
        extra = schema.get("additionalProperties")
        known = self.documented(schema, site, depth) \
            if self.undocumented and extras and extra is None else None
        for key, item in value.items():
            if key in props:
                self.walk(props[key], item, _join(path, str(key)),
                          self.child(site, "properties", key), depth + 1)
            elif isinstance(extra, dict):
                self.walk(extra, item, _join(path, "*"),
                          self.child(site, "additionalProperties"), depth + 1)
            elif extra is False and not self.undocumented:
                self.add(path, "extra_property", "no other properties", json_type(item),
                         site)
            elif (extra is False and extras) or (known and key not in known):
                self.add(_join(path, str(key)), "extra_property", "absent",
                         json_type(item), site, str(key))
            if self.full():
                return

    def documented(self, schema: dict[str, Any], site: Site, depth: int) -> set[str]:
        """The property names `schema` documents, with those of its `allOf` parts."""
        names = set(schema.get("properties") or {})
        for i, sub in enumerate(schema.get("allOf") or ()):
            part, where = self.deref(sub, self.child(site, "allOf", i))
            if isinstance(part, dict) and depth < _MAX_DEPTH:
                names |= self.documented(part, where, depth + 1)
        return names


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _is(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True  # an unknown type name: nothing facade can hold the answer to


def json_equal(value: Any, listed: Any) -> bool:
    """JSON equality: `true` is not 1, `1.0` is 1."""
    if isinstance(value, bool) or isinstance(listed, bool):
        return value is listed
    return bool(value == listed)
