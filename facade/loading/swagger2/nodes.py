"""Swagger 2.0 conversion: where a node is, and the small rewrites that need no context."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["At", "extensions", "media", "relocate", "security_scheme", "servers"]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
SECTIONS = {"definitions": "schemas", "parameters": "parameters", "responses": "responses"}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
JSON = ("application/json",)
PARAM_SCHEMA = ("type", "format", "default", "maximum", "exclusiveMaximum", "minimum",
                 "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
                 "minItems", "uniqueItems", "enum", "multipleOf")
QUERY_STYLES = {"csv": ("form", False), "ssv": ("spaceDelimited", False),
                 "pipes": ("pipeDelimited", False), "multi": ("form", True)}
SIMPLE_STYLES = {"csv": ("simple", False)}
FLOWS = {"implicit": "implicit", "password": "password", "application": "clientCredentials",
          "accessCode": "authorizationCode"}
OPERATION_KEYS = ("tags", "summary", "description", "externalDocs", "operationId")
REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
FORMATS_HINT = "use csv, ssv, pipes or multi in the spec, or do not curate this operation"



class At(NamedTuple):
    """Where a 2.0 node is (`base`, `parts` of its JSON pointer) and which file its 3.0
    form lands in (`home`). A tuple: a large document makes hundreds of thousands."""

    base: Path
    home: Path
    parts: tuple[str | int, ...] = ()

    def child(self, *parts: str | int) -> At:
        return At(self.base, self.home, self.parts + parts)

    @property
    def pointer(self) -> str:
        return "/".join(["#", *(str(p).replace("~", "~0").replace("/", "~1")
                                for p in self.parts)])


def media(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return default


def extensions(node: dict[str, Any]) -> dict[str, Any]:
    return {k: node[k] for k in node if isinstance(k, str) and k[:2] == "x-"}


def relocate(data: Any) -> Any:
    """Move a file's top-level `definitions`/`parameters`/`responses` maps under
    `components`, where the rewritten refs point."""
    if not isinstance(data, dict) or not any(isinstance(data.get(s), dict) for s in SECTIONS):
        return data
    out = {k: v for k, v in data.items() if not (k in SECTIONS and isinstance(v, dict))}
    components = out.setdefault("components", {})
    for section, target in SECTIONS.items():
        for name, node in (data.get(section) or {}).items() if isinstance(
                data.get(section), dict) else ():
            body = section == "parameters" and isinstance(node, dict) and node.get("in") == "body"
            components.setdefault("requestBodies" if body else target, {})[name] = node
    return out


def servers(data: dict[str, Any]) -> list[dict[str, str]]:
    host, base = data.get("host"), data.get("basePath") or ""
    schemes = [s for s in data.get("schemes") or [] if isinstance(s, str)]
    if isinstance(host, str) and host:
        return [{"url": f"{s}://{host}{base}"} for s in schemes] or [{"url": f"//{host}{base}"}]
    return [{"url": base}] if base else []


def security_scheme(scheme: Any) -> Any:
    if not isinstance(scheme, dict):
        return scheme
    kind = scheme.get("type")
    out: dict[str, Any]
    if kind == "basic":
        out = {"type": "http", "scheme": "basic"}
    elif kind == "apiKey":
        out = {"type": "apiKey", "name": scheme.get("name"), "in": scheme.get("in")}
    elif kind == "oauth2" and scheme.get("flow") in FLOWS:
        flow = {k: scheme[k] for k in ("authorizationUrl", "tokenUrl") if k in scheme}
        out = {"type": "oauth2", "flows": {FLOWS[scheme["flow"]]: {
            **flow, "scopes": scheme.get("scopes") or {}}}}
    else:
        return scheme
    if "description" in scheme:
        out["description"] = scheme["description"]
    return {**out, **extensions(scheme)}
