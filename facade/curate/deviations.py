"""How a recorded backend answer deviates from its documented response schema.

`classify(answer, schema, version=…, resolve=…, site=…)` walks a JSON answer and the
OpenAPI schema documenting it side by side and returns each `Deviation`, of one of six
kinds:

| kind               | the answer has …                                   |
|--------------------|----------------------------------------------------|
| `null`             | null where the schema does not allow it            |
| `type`             | another JSON type than documented                  |
| `enum`             | a value the documented `enum` does not list        |
| `format`           | a string (or integer) breaking its `format`        |
| `missing_required` | no value for a property the schema requires        |
| `extra_property`   | a property the object's schema does not document   |

Each deviation says where it is in the answer (a JSONPath, array indexes as `[*]`), the
documented and the actual JSON type, never the value, and the *site* of the schema that
documents the field: the file and JSON pointer after `$ref`s are followed, so a fix made
there covers every operation using that schema. The module is self-contained (it imports
nothing from facade): `$ref`s are followed through the `resolve` callback.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

__all__ = ["KINDS", "Deviation", "Kind", "Resolve", "Site", "classify", "json_type"]

Kind = Literal["null", "type", "enum", "format", "missing_required", "extra_property"]
KINDS: tuple[Kind, ...] = ("null", "type", "enum", "format", "missing_required",
                           "extra_property")
Site = tuple[Path, str]  # a schema's file and JSON pointer in it ("" for the whole file)
Resolve = Callable[[str, Site], tuple[Any, Site]]  # ($ref, where it is) → (target, site)

_MAX_DEPTH = 64  # schema nesting walked for one value (cycles through allOf stop here)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Deviation:
    kind: Kind
    path: str  # in the answer: `$.items[*].name`
    documented: str  # `string`, `integer|null`, `enum`, `string (date-time)`, `absent`
    actual: str  # the JSON type found, or `absent`
    site: Site  # the schema to fix: the field's own, or its object's for the last two kinds
    name: str | None = None  # the property, for missing_required and extra_property
    value: Any = field(default=None, compare=False, repr=False)  # for an enum fix; never shown


def json_type(value: Any) -> str:
    """The JSON Schema type of a decoded JSON value (`1.0` is an integer, as in JSON Schema)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def classify(answer: Any, schema: Any, *, version: str, resolve: Resolve, site: Site,
             masked: str | None = None) -> list[Deviation]:
    """Every deviation of `answer` from `schema` (which stands at `site`), each once.

    Args:
        version: "3.0" (`nullable`, also Swagger 2.0's converted `x-nullable`) or "3.1"
            (`type` lists with "null").
        masked: a placeholder that replaced a value before the answer was recorded (a
            fixture masks redacted values): a value equal to it is not compared.
    """
    found = _Walker(version, resolve, masked).walk(answer, schema, site, "$", 0)
    return list(dict.fromkeys(found))


class _Walker:
    def __init__(self, version: str, resolve: Resolve, masked: str | None) -> None:
        self.version, self.resolve, self.masked = version, resolve, masked

    def walk(self, value: Any, schema: Any, site: Site, where: str, depth: int,
             extras: bool = True) -> list[Deviation]:
        nullable = isinstance(schema, dict) and schema.get("nullable") is True
        schema, site = self._deref(schema, site)
        if not isinstance(schema, dict) or depth > _MAX_DEPTH or \
                (self.masked is not None and value == self.masked):
            return []
        types = self._types(schema, nullable)
        if value is None and (types is None or "null" in types) and \
                (types is not None or nullable or not _composed(schema)):
            return []
        out: list[Deviation] = []
        for i, sub in enumerate(schema.get("allOf") or []):
            out += self.walk(value, sub, _child(site, "allOf", i), where, depth + 1, False)
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                tries: list[list[Deviation]] = [
                    self.walk(value, sub, _child(site, key, i), where, depth + 1)
                    for i, sub in enumerate(branches)]
                if all(tries):
                    # The branch it comes closest to: of its type, then fewest deviations.
                    closest: list[Deviation] = min(
                        tries, key=lambda found: _distance(found, where))
                    out += closest
        actual = json_type(value)
        if types is not None and actual not in types and \
                not (actual == "integer" and "number" in types):
            kind: Kind = "null" if value is None else "type"
            return [*out, Deviation(kind, where, "|".join(sorted(types)), actual, site)]
        out += self._value(value, schema, site, where, actual)
        if isinstance(value, dict):
            out += self._object(value, schema, site, where, depth, extras)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for item in value:
                out += self.walk(item, schema["items"], _child(site, "items"),
                                 f"{where}[*]", depth + 1)
        return out

    def _deref(self, schema: Any, site: Site) -> tuple[Any, Site]:
        if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            return self.resolve(schema["$ref"], site)
        return schema, site

    def _types(self, schema: dict[str, Any], nullable: bool) -> set[str] | None:
        kind = schema.get("type")
        if isinstance(kind, str):
            types = {kind}
        elif isinstance(kind, list):
            types = {str(k) for k in kind}
        else:
            return None
        if self.version != "3.1" and (nullable or schema.get("nullable") is True):
            types.add("null")
        enum = schema.get("enum")
        if self.version == "3.1" and isinstance(enum, list) and None in enum:
            types.add("null")
        return types

    def _value(self, value: Any, schema: dict[str, Any], site: Site, where: str,
               actual: str) -> list[Deviation]:
        enum = schema.get("enum")
        if isinstance(enum, list) and enum and not any(_same(value, e) for e in enum):
            return [Deviation("enum", where, "enum", actual, site, value=value)]
        fmt = schema.get("format")
        check = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if check is not None and check[0] == actual and not check[1](value):
            return [Deviation("format", where, f"{actual} ({fmt})", actual, site)]
        return []

    def _object(self, value: dict[str, Any], schema: dict[str, Any], site: Site,
                where: str, depth: int, extras: bool) -> list[Deviation]:
        out = []
        props: dict[str, Any] = schema["properties"] \
            if isinstance(schema.get("properties"), dict) else {}
        for name in schema.get("required") or []:
            if name not in value:
                documented = props.get(name)
                kind = self._types(self._deref(documented, site)[0] or {}, False) \
                    if isinstance(documented, dict) else None
                out.append(Deviation("missing_required", _member(where, name),
                                     "|".join(sorted(kind)) if kind else "any", "absent",
                                     site, name=name))
        known = self._documented(schema, site, depth) if extras else None
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in props:
                out += self.walk(item, props[name], _child(site, "properties", name),
                                 _member(where, name), depth + 1)
            elif isinstance(extra, dict):
                out += self.walk(item, extra, _child(site, "additionalProperties"),
                                 _member(where, name), depth + 1)
            elif known and name not in known and extra is not True:
                out.append(Deviation("extra_property", _member(where, name), "absent",
                                     json_type(item), site, name=name))
        return out

    def _documented(self, schema: dict[str, Any], site: Site, depth: int) -> set[str]:
        """The property names `schema` documents, with those of its `allOf` parts."""
        names = set(schema.get("properties") or {})
        for i, sub in enumerate(schema.get("allOf") or []):
            part, where = self._deref(sub, _child(site, "allOf", i))
            if isinstance(part, dict) and depth < _MAX_DEPTH:
                names |= self._documented(part, where, depth + 1)
        return names


def _distance(found: list[Deviation], where: str) -> tuple[bool, int]:
    return any(d.path == where and d.kind in ("type", "null") for d in found), len(found)


def _composed(schema: dict[str, Any]) -> bool:
    return any(isinstance(schema.get(k), list) for k in ("allOf", "anyOf", "oneOf"))


def _same(value: Any, listed: Any) -> bool:
    return json_type(value) == json_type(listed) and value == listed


def _child(site: Site, *tokens: str | int) -> Site:
    escaped = (str(t).replace("~", "~0").replace("/", "~1") for t in tokens)
    return site[0], "/".join((site[1], *escaped))


def _member(where: str, name: str) -> str:
    return f"{where}.{name}" if _NAME.match(name) else f"{where}[{name!r}]"


def _is_date_time(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", text):
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        return bool(re.fullmatch(r"\d{4}-\d\d-\d\d", text)) and bool(date.fromisoformat(text))
    except ValueError:
        return False


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return bool(re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", text))


def _is_ip(version: int) -> Callable[[Any], bool]:
    def check(text: Any) -> bool:
        try:
            return ipaddress.ip_address(text).version == version
        except ValueError:
            return False
    return check


# The formats checked, with the JSON type each applies to; any other format is not checked.
_FORMATS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "date-time": ("string", _is_date_time),
    "date": ("string", _is_date),
    "uuid": ("string", _is_uuid),
    "email": ("string", lambda t: bool(re.fullmatch(r"[^@\s]+@[^@\s]+", t))),
    "ipv4": ("string", _is_ip(4)),
    "ipv6": ("string", _is_ip(6)),
    "uri": ("string", lambda t: bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", t))),
    "int32": ("integer", lambda n: -2**31 <= n < 2**31),
    "int64": ("integer", lambda n: -2**63 <= n < 2**63),
}
