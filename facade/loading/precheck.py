"""Load time: a quick, exact-type check that tells when openapi-pydantic surely accepts an
operation, so that loading a spec need not import or run it for the common case.

`OpenAPIDocument._validate` (`facade.loading.spec`) builds a small shape of each curated
operation; when `plainly_valid_operation` says yes, the shape is valid and openapi-pydantic
is skipped; otherwise openapi-pydantic decides and words the error.
"""

from __future__ import annotations

from typing import Any

__all__ = ["plainly_valid_operation"]

_LOCATIONS = frozenset({"query", "header", "path", "cookie"})
_OPERATION_KEYS = frozenset({"parameters", "responses", "requestBody", "operationId",
                             "summary", "description", "deprecated", "tags"})
_PARAMETER_KEYS = frozenset({"name", "in", "required", "schema", "style", "explode"})


def plainly_valid_operation(shape: dict[str, Any]) -> bool:
    """True only when openapi-pydantic's `Operation` (3.0 and 3.1) surely accepts `shape`.

    `shape` is what `OpenAPIDocument._validate` builds. The check is strict where pydantic
    is lax: exact `str`, `bool`, `list` and `dict` types only (no `"true"` for a bool, no
    tuple for a list, no str subclass), no keys beyond those `_validate` sets, a parameter
    schema of `{}` and empty media type objects. openapi-pydantic's models have no
    validators of their own (not even `in: path` ⇒ `required`, and `style` is any
    string), so types and the `in` enum are all there is to check. False means "ask
    openapi-pydantic", not "invalid".
    """
    if type(shape) is not dict or not shape.keys() <= _OPERATION_KEYS:
        return False
    responses = shape.get("responses")  # required by 3.0, optional in 3.1
    if type(responses) is not dict:
        return False
    for status, response in responses.items():
        if (type(status) is not str or type(response) is not dict
                or response.keys() != {"description"}
                or type(response["description"]) is not str):
            return False
    parameters = shape.get("parameters")
    if parameters is not None:
        if type(parameters) is not list:
            return False
        for parameter in parameters:
            if (type(parameter) is not dict or not parameter.keys() <= _PARAMETER_KEYS
                    or type(parameter.get("name")) is not str
                    or type(parameter.get("in")) is not str
                    or parameter["in"] not in _LOCATIONS
                    or type(parameter.get("required", False)) is not bool
                    or not _optional(parameter.get("style"), str)
                    or not _optional(parameter.get("explode"), bool)):
                return False
            schema = parameter.get("schema", {})
            if type(schema) is not dict or schema:
                return False
    if "requestBody" in shape:
        body = shape["requestBody"]
        if type(body) is not dict or body.keys() != {"content"}:
            return False
        content = body["content"]
        if type(content) is not dict:
            return False
        for media_type, media in content.items():
            if type(media_type) is not str or type(media) is not dict or media:
                return False
    if not all(_optional(shape.get(key), str)
               for key in ("operationId", "summary", "description")):
        return False
    if type(shape.get("deprecated", False)) is not bool:
        return False
    tags = shape.get("tags")
    return tags is None or (type(tags) is list and all(type(tag) is str for tag in tags))


def _optional(value: Any, kind: type) -> bool:
    return value is None or type(value) is kind
