"""Call time: checking a call's arguments and its result against the tool's schemas.

Each schema gets a compiled fast path (fastjsonschema) that accepts most values in a few
microseconds, and jsonschema, which decides and words the error whenever the fast path
does not accept. Both are built on first use, so starting pays for neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import fastjsonschema

from facade.errors import dotted_path

if TYPE_CHECKING:
    import jsonschema

__all__ = ["FAST_ANSWER_KEYWORDS", "FAST_INPUT_KEYWORDS", "FAST_KEYWORDS", "SchemaCheck",
           "argument_errors", "excerpt", "json_size"]


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    # The schemas were built and checked at load (`facade check` runs check_schema on
    # them); checking again at every start would cost Stripe-sized tools a second.
    # Imported here: jsonschema takes ~30 ms to import, and is needed only once a fast
    # path does not accept (see `SchemaCheck`).
    import jsonschema

    return jsonschema.Draft202012Validator(schema)


# Keywords whose meaning a draft-7 compiled validator shares with 2020-12: output schemas
# (shape only) use nothing else. Anything outside this set keeps the jsonschema path.
FAST_KEYWORDS = frozenset({
    "type", "properties", "items", "anyOf", "allOf", "oneOf", "additionalProperties",
    "required", "$ref", "$defs", "deprecated", "readOnly", "writeOnly",
})
# Input schemas add validation keywords both read alike. `enum` and `const` only with
# strings and nulls: Python's `True == 1` would let a compiled check accept `true` for 1.
# (`multipleOf` is left out: the two round floats differently.)
FAST_INPUT_KEYWORDS = FAST_KEYWORDS | {
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minItems", "maxItems", "minProperties", "maxProperties",
    "enum", "const",
}
# Documented response schemas (`facade.loading.tolerance.documented_schema`) add string
# enums and the formats of `facade.deviations.FORMATS`, checked by the same callables.
FAST_ANSWER_KEYWORDS = FAST_KEYWORDS | {"enum"}
# Annotations: whatever their value holds (an example may be any JSON), nothing to check.
_ANNOTATIONS = frozenset({"description", "title", "examples", "default", "format"})


def _plain(schema: Any, keywords: frozenset[str] = FAST_KEYWORDS) -> bool:
    """Whether `schema` uses only `keywords` (vendor `x-` keys aside)."""
    if isinstance(schema, list):
        return all(_plain(s, keywords) for s in schema)
    if not isinstance(schema, dict):
        return True
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            if not isinstance(value, dict) or not all(_plain(v, keywords)
                                                      for v in value.values()):
                return False
        elif key in _ANNOTATIONS:
            continue
        elif key in ("enum", "const") and key in keywords:
            values = value if key == "enum" and isinstance(value, list) else [value]
            if not all(v is None or isinstance(v, str) for v in values):
                return False
        elif key not in keywords and not key.startswith("x-"):
            return False
        elif key in ("required", "pattern") or key.startswith(("min", "max", "exclusive")):
            continue  # values, not subschemas
        elif not _plain(value, keywords):
            return False
    return True


def _fast_check(schema: dict[str, Any], keywords: frozenset[str] = FAST_KEYWORDS,
                formats: dict[str, Callable[[str], bool]] | None = None
                ) -> Callable[[Any], Any] | None:
    """A compiled validator (fastjsonschema, ~15x faster on large results) used as a fast
    path: when it accepts, jsonschema would too; when it rejects, jsonschema decides and
    words the error. None when the schema is outside what it shares with 2020-12.
    `formats`: the formats it checks, each by the callable given (none without)."""
    if not _plain(schema, keywords):
        return None
    try:
        return fastjsonschema.compile(schema, use_default=False, use_formats=bool(formats),
                                      formats=formats or {}, detailed_exceptions=False)
    except Exception:  # any schema it cannot compile keeps the jsonschema path
        return None


class SchemaCheck:
    """One schema's checks, each built on first use, so that starting does not pay for
    tools nobody calls: the compiled fast path (`_fast_check`) and jsonschema, which
    decides and words the errors whenever the fast path does not accept."""

    def __init__(self, schema: dict[str, Any], keywords: frozenset[str],
                 formats: dict[str, Callable[[str], bool]] | None = None) -> None:
        self.schema = schema
        self._keywords = keywords
        self._formats = formats
        self._fast: Callable[[Any], Any] | None | bool = False  # False: not compiled yet
        self._validator: jsonschema.Draft202012Validator | None = None

    def fast_accepts(self, value: Any) -> bool:
        if self._fast is False:
            self._fast = _fast_check(self.schema, self._keywords, self._formats)
        check = self._fast
        if not callable(check):
            return False
        try:
            check(value)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    @property
    def validator(self) -> jsonschema.Draft202012Validator:
        if self._validator is None:
            self._validator = _validator(self.schema)
        return self._validator


_MAX_ERRORS = 5  # a list of 10,000 wrong items gets five messages and a count
_EXCERPT = 40  # characters of a value quoted in an error message


def excerpt(value: Any) -> str:
    """A value as an error message quotes it: its repr, cut to a few dozen characters."""
    text = repr(value)
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + f"… ({len(text):,} characters)"


def argument_errors(validator: jsonschema.Draft202012Validator, arguments: Any) -> list[str]:
    """What is wrong with `arguments`, in short messages: at most `_MAX_ERRORS` of them,
    and no value quoted beyond `_EXCERPT` characters, however large it is."""
    messages = []
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    for error in errors[:_MAX_ERRORS]:
        where = dotted_path(tuple(error.absolute_path))
        if error.validator == "additionalProperties" and not error.absolute_path:
            allowed = sorted((error.schema.get("properties") or {}))
            extra = sorted(set(arguments) - set(allowed)) if isinstance(arguments, dict) else []
            messages.append(f"unknown argument(s) {', '.join(map(excerpt, extra))}; the tool "
                            f"takes {', '.join(allowed) or 'no arguments'}")
        elif error.validator == "required":
            messages.append(error.message.replace("property", "argument"))
        else:
            message = error.message
            quoted = repr(error.instance)
            if len(quoted) > _EXCERPT:
                message = message.replace(quoted, excerpt(error.instance))
            messages.append(f"{where or 'arguments'}: {message}")
    if len(errors) > _MAX_ERRORS:
        messages.append(f"and {len(errors) - _MAX_ERRORS} more")
    return messages


def json_size(value: Any, limit: int) -> int:
    """About how many bytes `value` takes as JSON (UTF-8), counted without encoding it;
    the count stops once past `limit`, so a huge value costs no more than a small one."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
            if total <= limit and not item.isascii():
                total += len(item.encode("utf-8", "surrogatepass")) - len(item)
        elif isinstance(item, dict):
            total += 2 + len(item)
            for key, member in item.items():
                stack.append(key)
                stack.append(member)
        elif isinstance(item, (list, tuple)):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 5  # a number, true, false or null: a few bytes
    return total
