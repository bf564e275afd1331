"""Encode validated arguments into the parts of an HTTP request, per OpenAPI 3 rules.

Pure functions: no I/O, no httpx. A path value can never change which endpoint is called:

- it is percent-encoded with nothing kept safe;
- values that are empty or dot segments, and values holding `/`, `\\`, `;`, `?`, `#`, control
  or invisible format characters, are refused before encoding, also when spelled
  percent-encoded, double-encoded or with full-width forms (`%2e%2e`, `%252F`, `．．`),
  unless the curation allows the character (`params.<p>.allow`); dot segments never pass;
- values longer than `max_length` (default 256) are refused.

Header values must be printable ASCII; an exploded query object may not set another of the
operation's query parameters.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from facade.tools import Argument, HTTPBinding

__all__ = ["ArgumentError", "EncodedRequest", "encode_request", "to_text"]


class ArgumentError(ValueError):
    """An argument value cannot be sent safely; the message names the argument."""


@dataclass
class EncodedRequest:
    method: str
    path: str  # already percent-encoded, relative to the base URL
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    form_body: dict[str, str] | None = None
    has_body: bool = False


def to_text(value: Any) -> str:
    """A primitive as text: JSON spelling for booleans and null, plain otherwise."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _pairs(value: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), to_text(v)) for k, v in value.items() if v is not None]


def _simple(arg: Argument, value: Any) -> str:
    """`simple` style (path and header parameters)."""
    if isinstance(value, list):
        return ",".join(to_text(v) for v in value)
    if isinstance(value, dict):
        sep = "=" if arg.explode else ","
        return ",".join(f"{k}{sep}{v}" for k, v in _pairs(value))
    return to_text(value)


_PATH_SPECIALS = "/\\;?#"
_MAX_DECODES = 3  # %2e, %252e, %25252e: deeper encodings are refused as suspicious
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def _check_path_text(arg: Argument, text: str) -> str:
    """Refuse a path value that could leave its segment; see the module docstring."""
    def refuse(why: str) -> ArgumentError:
        return ArgumentError(f"argument {arg.name!r}: {why}")

    if len(text) > arg.max_length:
        raise refuse(f"longer than {arg.max_length} characters")
    if any(unicodedata.category(c) in _INVISIBLE for c in text):
        raise refuse("control and invisible characters are not allowed in a path value")
    seen = text
    for _ in range(_MAX_DECODES + 1):
        folded = unicodedata.normalize("NFKC", seen)
        for part in _segments(folded, arg.allow):
            if part.strip(".") == "":
                raise refuse(_bad_segment(text, part, folded != text))
        bad = sorted({c for c in folded if c in _PATH_SPECIALS and c not in arg.allow})
        if bad:
            shown = " ".join(bad)
            spelled = "" if folded == text else " once decoded"
            raise refuse(f"{text!r} contains {shown}{spelled}, which a path value may not hold")
        decoded = unquote(folded)
        if decoded == folded:
            return text
        seen = decoded
    raise refuse(f"{text!r} is percent-encoded more than {_MAX_DECODES} times")


def _bad_segment(text: str, part: str, decoded: bool) -> str:
    """Why a path value with an empty or all-dots segment is refused, in words."""
    spelled = " once decoded" if decoded else ""
    if part == "":
        if text == "":
            return "an empty value is not a valid path segment"
        return f"{text!r} contains an empty path segment{spelled}"
    dot = part in (".", "..")
    if text == part:
        return f"{text!r} is a dot segment, which could change the endpoint called" if dot \
            else f"{text!r} is dots only, which a path value may not be"
    if dot:
        return (f"{text!r} contains the dot segment {part!r}{spelled}, which could change the "
                "endpoint called")
    return f"{text!r} contains the segment {part!r}{spelled}: dots only, which a path value " \
        "may not hold"


def _segments(text: str, allow: frozenset[str]) -> list[str]:
    for sep in "\\/":
        if sep in allow:
            text = text.replace(sep, "/")
    return text.split("/")


def _path_value(arg: Argument, value: Any) -> str:
    def enc(text: str) -> str:
        return quote(_check_path_text(arg, text), safe="")

    if isinstance(value, (list, dict)) and not value:
        raise ArgumentError(f"argument {arg.name!r}: an empty value is not a valid path "
                            "segment")
    if arg.style == "label":
        items = value if isinstance(value, list) else [value]
        return "." + ("." if arg.explode else ",").join(enc(to_text(v)) for v in items)
    if arg.style == "matrix":
        items = value if isinstance(value, list) else [value]
        if arg.explode:
            return "".join(f";{arg.source}={enc(to_text(v))}" for v in items)
        return f";{arg.source}=" + ",".join(enc(to_text(v)) for v in items)
    if isinstance(value, list):
        return ",".join(enc(to_text(v)) for v in value)
    if isinstance(value, dict):
        sep = "=" if arg.explode else ","
        return ",".join(f"{enc(k)}{sep}{enc(v)}" for k, v in _pairs(value))
    return enc(to_text(value))


def _deep(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _deep(f"{prefix}[{k}]", v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _deep(f"{prefix}[{i}]", v, out)
    elif value is not None:
        out.append((prefix, to_text(value)))


def _query(arg: Argument, value: Any, out: list[tuple[str, str]]) -> None:
    name = arg.source
    if arg.style == "deepObject":
        _deep(name, value, out)
    elif isinstance(value, list):
        if arg.explode and arg.style == "form":
            out.extend((name, to_text(v)) for v in value)
        else:
            sep = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(arg.style, ",")
            out.append((name, sep.join(to_text(v) for v in value)))
    elif isinstance(value, dict):
        if arg.explode:
            # Exploded form objects spread their properties as parameters; they may not
            # set the operation's other query parameters (fixed ones included).
            reserved = {k.lower() for k in arg.reserved_keys}
            taken = sorted(k for k in value if str(k).lower() in reserved)
            if taken:
                raise ArgumentError(f"argument {arg.name!r}: key(s) {', '.join(taken)} would "
                                    "set other query parameters")
            out.extend(_pairs(value))
        else:
            out.append((name, ",".join(f"{k},{v}" for k, v in _pairs(value))))
    else:
        out.append((name, to_text(value)))


_MAX_HEADER = 8192


def _check_flat(arg: Argument, value: Any) -> None:
    """Parameter styles define lists and objects of primitives only (deepObject aside)."""
    if arg.style == "deepObject":
        return
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) \
        else ()
    if any(isinstance(v, (list, dict)) for v in items):
        raise ArgumentError(f"argument {arg.name!r}: nested lists or objects cannot be sent "
                            f"in a {arg.location} parameter")
    if isinstance(value, dict) and any(str(k) == "" for k in value):
        raise ArgumentError(f"argument {arg.name!r}: an empty key cannot be sent in a "
                            f"{arg.location} parameter")


def _check_header(arg: Argument, text: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ArgumentError(f"argument {arg.name!r}: control characters are not allowed "
                            "in a header value")
    if not text.isascii():
        raise ArgumentError(f"argument {arg.name!r}: a header value must be ASCII")
    if len(text) > _MAX_HEADER:
        raise ArgumentError(f"argument {arg.name!r}: longer than {_MAX_HEADER} characters")
    return text


def _set_path(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = body
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def encode_request(binding: HTTPBinding, arguments: dict[str, Any]) -> EncodedRequest:
    """Build the request for already validated `arguments` (keyed by argument name)."""
    req = EncodedRequest(method=binding.method, path=binding.path)
    body: dict[str, Any] = {}
    cookies: list[str] = []
    for arg in binding.arguments:
        if arg.fixed:
            value = arg.value
        elif arg.name in arguments:
            value = arguments[arg.name]
        elif arg.has_value:
            value = arg.value
        else:
            continue
        if isinstance(value, dict) and arg.location not in ("body", "body_whole"):
            value = {k: v for k, v in value.items() if v is not None}
        if arg.location in ("query", "header", "cookie") and (
                value is None or isinstance(value, (list, dict)) and not value):
            continue  # RFC 6570: null and empty lists and objects are undefined: not sent
        if arg.location in ("path", "query", "header", "cookie"):
            _check_flat(arg, value)
        if arg.location == "path":
            req.path = req.path.replace("{" + arg.source + "}", _path_value(arg, value))
        elif arg.location == "query":
            _query(arg, value, req.query)
        elif arg.location == "header":
            req.headers[arg.source] = _check_header(arg, _simple(arg, value))
        elif arg.location == "cookie":
            cookies.append(f"{arg.source}={quote(_simple(arg, value), safe='')}")
        elif arg.location == "body":
            _set_path(body, arg.body_path, value)
            req.has_body = True
        else:
            req.json_body, req.has_body = value, True
    if cookies:
        req.headers["Cookie"] = "; ".join(cookies)
    if body:
        media = (binding.body_media_type or "application/json").split(";")[0].lower()
        if media in ("application/x-www-form-urlencoded", "multipart/form-data"):
            req.form_body = {k: to_text(v) for k, v in body.items() if v is not None}
        else:
            req.json_body = body
    return req
