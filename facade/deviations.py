"""How a JSON value deviates from a documented schema: one record per place and kind.

Real backends drift from their specs in a few common ways. `deviations(schema, value)`
walks a documented schema (the strict one facade keeps beside each tool: `type`,
`properties`, `items`, `additionalProperties`, `required`, `enum`, `format`, `allOf`,
`anyOf`/`oneOf`, `$ref` into `$defs`) together with a value and names each departure:

    null              null where the schema does not admit it (objects and arrays too)
    type              another JSON type: "42" or 1.5 where an integer is documented
    enum              a value the enumeration does not list
    format            a string whose `format` does not parse (date-time, uuid, …)
    missing_required  a required property is absent
    extra_property    a property the schema closes out (`additionalProperties: false`)

A `Deviation` names the place as an `include` path (`data[].owned_by`; `*` for the values
of a map) and the documented and actual JSON *types*, never the value: operators may log
and count it. Extra properties are reported at the object that holds them, without their
names, since a backend's keys can be data too.

Imports nothing from facade; load time and call time may both use it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["FORMATS", "KINDS", "Deviation", "deviations", "json_type"]

KINDS = ("null", "type", "enum", "format", "missing_required", "extra_property")

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
# listed here is advice only: it is never checked.
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
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Deviation:
    """One way an answer departs from its documented schema, without its value."""

    path: str  # an include path: `data[].owned_by`; "" for the answer itself
    kind: str  # one of KINDS
    documented: str  # what the schema says, by JSON type: "string", "integer or null"…
    actual: str  # the JSON type found: "null", "string", … ("absent" when missing)

    def describe(self) -> str:
        """`owned_by: null where string is documented (null)`: no value, ever."""
        where = self.path or "the result"
        if self.kind == "missing_required":
            return f"{where}: required property is absent (missing_required)"
        if self.kind == "extra_property":
            return f"{where}: {self.actual} property the schema does not allow " \
                   "(extra_property)"
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


def deviations(schema: dict[str, Any], value: Any, limit: int = 32) -> list[Deviation]:
    """Every distinct (path, kind) in which `value` departs from `schema`, at most `limit`,
    in the order found. Empty when the value conforms."""
    walker = _Walker(schema.get("$defs") or {}, limit)
    walker.walk(schema, value, "", 0)
    return list(walker.found.values())


class _Walker:
    def __init__(self, defs: dict[str, Any], limit: int) -> None:
        self.defs = defs
        self.limit = limit
        self.found: dict[tuple[str, str], Deviation] = {}

    def add(self, path: str, kind: str, documented: str, actual: str) -> None:
        if len(self.found) < self.limit:
            self.found.setdefault((path, kind), Deviation(path, kind, documented, actual))

    def full(self) -> bool:
        return len(self.found) >= self.limit

    def walk(self, schema: Any, value: Any, path: str, depth: int) -> None:
        if not isinstance(schema, dict) or depth > _MAX_DEPTH or self.full():
            return
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            self.walk(self.defs.get(ref.removeprefix("#/$defs/")), value, path, depth + 1)
        for branch in schema.get("allOf") or ():
            self.walk(branch, value, path, depth + 1)
        branches = [*(schema.get("anyOf") or ()), *(schema.get("oneOf") or ())]
        if branches:
            self._any(branches, value, path, depth)
        if not self._scalar(schema, value, path):
            return
        if isinstance(value, dict):
            self._object(schema, value, path, depth)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            inner = f"{path}[]"
            for item in value:
                self.walk(schema["items"], item, inner, depth + 1)
                if self.full():
                    return

    def _any(self, branches: list[Any], value: Any, path: str, depth: int) -> None:
        """An anyOf/oneOf: nothing when a branch fits, else the closest branch's findings:
        one of the value's type first, then one whose required properties are all there,
        then the one with the fewest findings."""
        best: tuple[tuple[int, int, int], dict[tuple[str, str], Deviation]] | None = None
        for branch in branches:
            trial = _Walker(self.defs, self.limit)
            trial.walk(branch, value, path, depth + 1)
            if not trial.found:
                return
            rank = (int((path, "type") in trial.found or (path, "null") in trial.found),
                    sum(kind == "missing_required" for _, kind in trial.found),
                    len(trial.found))
            if best is None or rank < best[0]:
                best = (rank, trial.found)
        for (where, kind), found in (best[1] if best else {}).items():
            self.add(where, kind, found.documented, found.actual)

    def _scalar(self, schema: dict[str, Any], value: Any, path: str) -> bool:
        """Type, enum and format; False when the type is off (nothing below to check)."""
        kinds = schema.get("type")
        if kinds is not None:
            allowed = [kinds] if isinstance(kinds, str) else list(kinds)
            if not any(_is(value, k) for k in allowed):
                documented = " or ".join(map(str, allowed))
                self.add(path, "null" if value is None else "type", documented,
                         json_type(value))
                return False
        enum = schema.get("enum")
        if isinstance(enum, list) and not any(_same(value, v) for v in enum):
            self.add(path, "enum", f"one of the {len(enum)} listed values",
                     json_type(value))
        fmt = schema.get("format")
        if isinstance(value, str) and isinstance(fmt, str):
            check = FORMATS.get(fmt)
            if check is not None and not check(value):
                self.add(path, "format", f"a valid {fmt}", "string")
        return True

    def _object(self, schema: dict[str, Any], value: dict[str, Any], path: str,
                depth: int) -> None:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        for name in schema.get("required") or ():
            if name not in value:
                documented = props.get(name, {}).get("type", "a value") \
                    if isinstance(props.get(name), dict) else "a value"
                self.add(_join(path, name), "missing_required", str(documented), "absent")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key)
            if sub is not None:
                self.walk(sub, item, _join(path, str(key)), depth + 1)
            elif isinstance(extra, dict):
                self.walk(extra, item, _join(path, "*"), depth + 1)
            elif extra is False:
                self.add(path, "extra_property", "no other properties", json_type(item))
            if self.full():
                return


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


def _same(value: Any, listed: Any) -> bool:
    """JSON equality: `true` is not 1, `1.0` is 1."""
    if isinstance(value, bool) or isinstance(listed, bool):
        return value is listed
    return bool(value == listed)
