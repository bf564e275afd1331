"""`facade test --suggest-overlay FILE`: an overlay that makes the spec match what the
backend answered.

The deviations found in the recorded answers (`facade.deviations`) are grouped by
the schema that documents them. Each such schema is fixed in memory: null allowed
(`nullable: true` in 3.0, `x-nullable: true` in Swagger 2.0, `"null"` added to `type` in
3.1), the actual type added (3.1) or the type dropped (3.0 and 2.0 cannot list two; an
integer documented where numbers come back becomes `number`), the value added to the
`enum`, the `format` dropped, the property no longer `required`, the undocumented property
documented with its type. The difference is then written as Overlay 1.0 actions on the
document as written (so `definitions`, not `components.schemas`, for Swagger 2.0):

- additions and changed values as one `update` (objects merge, arrays are appended to);
- an array or object that must lose entries (a `required` list) is removed, then set again;
- a schema that must lose a plain value (`type`, `format`) is removed and set again whole,
  since Overlay 1.0 targets only objects and arrays.

Schemas are fixed where they are defined: a field whose schema comes from a `$ref` is
fixed in the component, once for every operation using it. A schema in another file of a
multi-file spec cannot be reached by an overlay (targets address the root document); it
is reported instead. The actions are ordered outer schema first.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from facade.deviations import Deviation
from facade.loading.refs import pointer_tokens
from facade.loading.spec import OpenAPIDocument

__all__ = ["Suggestion", "jsonpath", "suggest_overlay"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WHY = {"null": "null", "type": "another type", "enum": "a value the enum does not list",
        "format": "a value breaking the format", "missing_required": "no value",
        "extra_property": "an undocumented property"}
Tokens = tuple[str | int, ...]


@dataclass(frozen=True)
class Suggestion:
    overlay: dict[str, Any] | None  # None when nothing could be fixed
    unreachable: tuple[str, ...]  # deviations no overlay can fix, one line each


def suggest_overlay(found: Iterable[Deviation], spec: OpenAPIDocument) -> Suggestion:
    """The overlay fixing `found` (deviations from `spec`'s schemas), to be applied after
    the curation's current overlays."""
    by_site: dict[Tokens, list[Deviation]] = {}
    unreachable = []
    for deviation in found:
        tokens = _written(deviation, spec)
        if tokens is None:
            file = _site(deviation)[0]
            where = deviation.path or "the answer"
            unreachable.append(
                f"{where}: its schema is in {spec.resolver.name(file)}, " + (
                    "which an overlay cannot reach (targets address the root document)"
                    if file != spec.file else "where it could not be located"))
        else:
            by_site.setdefault(tokens, []).append(deviation)
    actions: list[dict[str, Any]] = []
    for tokens in sorted(by_site, key=len):
        old = _at(spec.written, tokens)
        new = copy.deepcopy(old)
        for deviation in by_site[tokens]:
            _fix(new, deviation, spec)
        why = "recorded answers have " + "; ".join(dict.fromkeys(
            f"{_WHY[d.kind]} at {d.path or 'the answer'}" for d in by_site[tokens]))
        actions += _actions(spec.written, tokens, old, new, why)
    if not actions:
        return Suggestion(None, tuple(unreachable))
    overlay = {"overlay": "1.0.0",
               "info": {"title": f"Fixes to {spec.display} from recorded backend answers",
                        "version": "1"},
               "actions": actions}
    return Suggestion(overlay, tuple(unreachable))


def _written(deviation: Deviation, spec: OpenAPIDocument) -> Tokens | None:
    """Where the deviation's schema is in the root document as written, or None."""
    file, pointer = _site(deviation)
    if file != spec.file:
        return None
    tokens: list[str] = pointer_tokens(pointer)
    if spec.converted is not None:
        tokens = _swagger2(tokens)
    node: Any = spec.written
    out: list[str | int] = []
    for token in tokens:
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            out.append(int(token))
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            out.append(token)
            node = node[token]
        else:
            return None
    return tuple(out) if isinstance(node, dict) and out else None


def _swagger2(tokens: list[str]) -> list[str]:
    """A pointer into the converted 3.0 document → the same node in the 2.0 one:
    `components/schemas/X` → `definitions/X`, `components/responses/X` → `responses/X`,
    and a response's `content/<media type>/schema` → its `schema`."""
    if tokens[:2] == ["components", "schemas"]:
        tokens = ["definitions", *tokens[2:]]
    elif tokens[:2] == ["components", "responses"]:
        tokens = ["responses", *tokens[2:]]
    for i in range(2, len(tokens) - 2):
        if tokens[i - 2] == "responses" and tokens[i] == "content" and \
                tokens[i + 2] == "schema":
            return [*tokens[:i], *tokens[i + 2:]]
    return tokens


def _site(deviation: Deviation) -> tuple[Any, str]:
    if deviation.site is None:
        raise ValueError("a deviation without its schema's site cannot be fixed")
    return deviation.site


def _at(document: Any, tokens: Tokens) -> Any:
    for token in tokens:
        document = document[token]
    return document


def _fix(schema: dict[str, Any], deviation: Deviation, spec: OpenAPIDocument) -> None:
    kind = deviation.kind
    if kind == "null":
        _allow_null(schema, spec)
    elif kind == "type":
        _add_type(schema, deviation.actual, spec.version)
    elif kind == "enum" and isinstance(schema.get("enum"), list):
        if not any(v == deviation.value and type(v) is type(deviation.value)
                   for v in schema["enum"]):
            schema["enum"].append(deviation.value)
    elif kind == "format":
        schema.pop("format", None)
    elif kind == "missing_required" and isinstance(schema.get("required"), list):
        schema["required"] = [r for r in schema["required"] if r != deviation.name]
        if not schema["required"]:
            del schema["required"]  # an empty list is invalid in OpenAPI 3.0
    elif kind == "extra_property" and deviation.name is not None:
        props = schema.setdefault("properties", {})
        props[deviation.name] = {} if deviation.actual == "null" else {"type": deviation.actual}


def _allow_null(schema: dict[str, Any], spec: OpenAPIDocument) -> None:
    kind = schema.get("type")
    if spec.version == "3.1":
        if isinstance(kind, str):
            schema["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            kind.append("null")
    else:
        schema["x-nullable" if spec.converted is not None else "nullable"] = True
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema["enum"].append(None)


def _add_type(schema: dict[str, Any], actual: str, version: str) -> None:
    kind = schema.get("type")
    if version == "3.1" and isinstance(kind, str):
        schema["type"] = [kind, actual]
    elif version == "3.1" and isinstance(kind, list):
        kind.append(actual)
    elif kind == "integer" and actual == "number":
        schema["type"] = "number"
    else:  # 3.0 and Swagger 2.0 name one type: the field takes any
        schema.pop("type", None)
        schema.pop("format", None)


def _actions(document: Any, tokens: Tokens, old: dict[str, Any], new: dict[str, Any],
             why: str) -> list[dict[str, Any]]:
    update, reset = _delta(old, new)
    target = jsonpath(tokens)
    if any(not isinstance(old[key], (dict, list)) for key in reset):
        # A plain value goes: only a whole schema can be removed, then set again.
        parent, last = tokens[:-1], tokens[-1]
        again = new if isinstance(_at(document, parent), list) else {last: new}
        return [{"target": target, "description": why, "remove": True},
                {"target": jsonpath(parent), "description": why, "update": again}]
    actions: list[dict[str, Any]] = []
    for key in reset:
        actions.append({"target": jsonpath((*tokens, key)), "description": why,
                        "remove": True})
        if key in new:
            update[key] = new[key]
    if update:
        actions.append({"target": target, "description": why, "update": update})
    return actions


def _delta(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What an `update` merge adds to `old` to make `new`, and the keys it cannot fix
    (gone, or arrays and objects that lost entries), which are removed and set again."""
    update: dict[str, Any] = {}
    reset = [key for key in old if key not in new]
    for key, value in new.items():
        was = old.get(key)
        if key not in old:
            update[key] = value
        elif was == value and type(was) is type(value):
            continue
        elif isinstance(was, dict) and isinstance(value, dict):
            inner, lost = _delta(was, value)
            if lost:
                reset.append(key)
            else:
                update[key] = inner
        elif isinstance(was, list) and isinstance(value, list) and value[:len(was)] == was:
            update[key] = value[len(was):]
        elif isinstance(was, (dict, list)):
            reset.append(key)
        else:
            update[key] = value
    return update, reset


def jsonpath(tokens: Tokens) -> str:
    """An RFC 9535 normalized-ish path: `$.components.schemas.User['x-id'][0]`."""
    out = "$"
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        elif _NAME.match(token):
            out += f".{token}"
        else:
            out += "['" + token.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out
