"""Flatten an operation's parameters and JSON body into one argument object.

Path, query, header and cookie parameters and the top-level properties of an object body
become sibling arguments. A curation can rename, describe, default, fix or hide each one,
and lift a nested body property (`supplier.contact.email`) to the top level. Two sources
landing on one name is a load error asking for a rename, never silent suffixing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from facade.deviations import json_equal
from facade.errors import Problem, did_you_mean
from facade.loading.curation import ParamCuration, ToolCuration, section_of
from facade.loading.lint import oversized
from facade.loading.schemas import SchemaConverter
from facade.loading.spec import Body, Operation, Parameter
from facade.loading.swagger2.nodes import FORM_TYPES
from facade.loading.yamlsource import YAMLDocument
from facade.tools import Argument

__all__ = ["FORBIDDEN_HEADERS", "FORM_TYPES", "Flattened", "flatten", "is_forbidden_header"]

# Headers the façade owns: OpenAPI says to ignore Accept/Content-Type/Authorization
# parameters, and the rest carry credentials or routing an agent must never steer.
FORBIDDEN_HEADERS = frozenset({
    "accept", "authorization", "content-type", "content-length", "cookie", "host",
    "connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "forwarded", "x-real-ip", "via",
})
_FORBIDDEN_PREFIXES = ("x-forwarded-", "proxy-")


def is_forbidden_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in FORBIDDEN_HEADERS or lowered.startswith(_FORBIDDEN_PREFIXES)


@dataclass
class Flattened:
    arguments: list[Argument] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # argument name → where it came from


class _Flattener:
    def __init__(self, doc: YAMLDocument, tool: str, curation: ToolCuration, op: Operation,
                 converter: SchemaConverter, problems: list[Problem],
                 warnings: list[Problem]) -> None:
        self.doc, self.tool, self.curation, self.op = doc, tool, curation, op
        self.converter = converter
        self.problems, self.warnings = problems, warnings
        self.out = Flattened()
        self.used: set[str] = set()
        self.section = section_of(curation)  # `tools` or `resources`, for positions

    def at(self, *path: str | int) -> tuple[str | int, ...]:
        return (self.section, self.tool, *path)

    def run(self) -> Flattened:
        for param in self.op.parameters:
            self._parameter(param)
        self._reserve_query_keys()
        if self.op.body is not None:
            self._body(self.op.body)
        for key in self.curation.params:
            if key not in self.used:
                self._unknown(key)
        return self.out

    def _reserve_query_keys(self) -> None:
        """An exploded form object spreads its keys over the query string: it may not set
        the other query parameters (fixed ones included), whatever keys the agent picks."""
        names = {p.name for p in self.op.parameters if p.location == "query"}
        for i, arg in enumerate(self.out.arguments):
            if arg.location == "query" and arg.style == "form" and arg.explode and \
                    self.out.properties.get(arg.name, {}).get("type") in ("object", None):
                self.out.arguments[i] = _replace(arg, reserved_keys=frozenset(
                    names - {arg.source}))

    def _unknown(self, key: str) -> None:
        names = [p.name for p in self.op.parameters] + list(self._body_props())
        hint = did_you_mean(key, names) or (
            f"parameters of {self.op.ref.label}: {', '.join(sorted(names)) or 'none'}")
        self.problems.append(self.doc.problem(
            self.at("params", key), f"unknown parameter {key!r}", hint=hint, key=True))

    def _body_props(self) -> dict[str, Any]:
        body = self.op.body
        if body is None:
            return {}
        schema = self.converter.convert(body.schema, body.base)
        props = schema.get("properties")
        return props if isinstance(props, dict) else {}

    def _parameter(self, param: Parameter) -> None:
        cur = self.curation.params.get(param.name)
        if cur is not None:
            self.used.add(param.name)
        if param.location == "header" and is_forbidden_header(param.name):
            if cur is not None:
                self.problems.append(self.doc.problem(
                    self.at("params", param.name),
                    f"header {param.name!r} is managed by facade and cannot be curated",
                    hint="set static headers under backend.headers", key=True))
            else:
                self.warnings.append(self.doc.problem(
                    self.at("operation"), f"header parameter {param.name!r} of "
                    f"{self.op.ref.label} is dropped: facade owns that header",
                    severity="warning"))
            return
        schema = self.converter.convert(param.schema, param.base)
        if param.location == "cookie" and schema.get("type") in ("array", "object"):
            # OpenAPI 3.0/3.1 define no cookie encoding for lists and objects that servers
            # agree on; sending a guess would be worse than not offering the parameter.
            message = (f"cookie parameter {param.name!r} of {self.op.ref.label} is a "
                       f"{schema['type']}, which has no agreed cookie encoding")
            if param.required:
                self.problems.append(self.doc.problem(self.at("operation"), message))
            else:
                self.warnings.append(self.doc.problem(
                    self.at("operation"), message + "; it is dropped", severity="warning"))
            return
        if param.location == "query" and not param.allow_empty_value and \
                schema.get("type") == "string" and "minLength" not in schema:
            schema = {**schema, "minLength": 1}  # OpenAPI: no empty value unless allowed
        arg = Argument(name=param.name, source=param.name, location=param.location,  # type: ignore[arg-type]
                       style=param.style, explode=param.explode)
        self._add(arg, schema, cur, param.required, param.description, param.example,
                  f"{param.location} parameter {param.name!r}")

    def _body(self, body: Body) -> None:
        media = body.media_type.split(";")[0].strip().lower()
        schema = self.converter.convert(body.schema, body.base)
        props = schema.get("properties")
        is_json = media == "application/json" or media.endswith("+json")
        if (is_json or media in FORM_TYPES) and isinstance(props, dict) and props:
            required = set(schema.get("required") or [])
            lifted = {k for k in self.curation.params if "." in k and k.split(".")[0] in props}
            for key in lifted:
                self._lift(key, props, required and body.required)
            for name, sub in props.items():
                cur = self.curation.params.get(name)
                if cur is not None:
                    self.used.add(name)
                self._add(Argument(name=name, source=name, location="body", body_path=(name,)),
                          sub, cur, body.required and name in required, None, None,
                          f"body property {name!r}")
        else:
            cur = self.curation.params.get("body")
            if cur is not None:
                self.used.add("body")
            self._add(Argument(name="body", source="body", location="body_whole"), schema,
                      cur, body.required, body.description, None, "request body")

    def _lift(self, key: str, props: dict[str, Any], parent_required: Any) -> None:
        parts = key.split(".")
        node: Any = {"properties": props}
        parents = []
        for part in parts:
            sub = node.get("properties") if isinstance(node, dict) else None
            if not isinstance(sub, dict) or part not in sub:
                return  # reported as unknown by run()
            parents.append(node)
            node = sub[part]
        self.used.add(key)
        del parents[-1]["properties"][parts[-1]]  # the parent no longer offers it
        for level, parent in enumerate(parents[1:], start=1):
            # The parents' examples and default showed the lifted value too: no longer.
            for word in ("examples", "default"):
                if word in parent:
                    values = parent[word] if word == "examples" and \
                        isinstance(parent[word], list) else [parent[word]]
                    kept = [_without(v, parts[level:]) for v in values]
                    parent[word] = kept if word == "examples" else kept[0]
        cur = self.curation.params[key]
        self._add(Argument(name=key, source=key, location="body", body_path=tuple(parts)),
                  node, cur, False, None, None, f"body property {key!r}")

    def _add(self, arg: Argument, schema: dict[str, Any], cur: ParamCuration | None,
             required: bool, description: str | None, example: Any, origin: str) -> None:
        where = self.at("params", arg.source)
        if cur is not None and cur.hidden:
            if required:
                self.problems.append(self.doc.problem(
                    where, f"{origin} is required and cannot be hidden",
                    hint="give it a fixed `value` instead"))
            return
        if cur is not None and cur.is_fixed:
            self._check_value(where, ("value",), cur.value, schema, origin)
            self.out.arguments.append(_replace(arg, fixed=True, value=cur.value,
                                               has_value=True))
            return
        name = (cur.rename if cur and cur.rename else arg.name)
        schema = dict(schema)
        if cur is not None and {"allow", "max_length"} & cur.model_fields_set:
            if arg.location != "path":
                self.problems.append(self.doc.problem(
                    where, f"`allow` and `max_length` apply to path parameters; {origin} is "
                    "not one"))
            arg = _replace(arg, allow=frozenset(cur.allow), max_length=cur.max_length)
        if arg.location == "path":  # the schema says what encoding accepts: no empties
            kind = schema.get("type")
            if kind == "string":
                limit = schema.get("maxLength")
                schema["maxLength"] = min(limit, arg.max_length) if isinstance(limit, int) \
                    else arg.max_length
                schema.setdefault("minLength", 1)
            elif kind == "array":
                schema.setdefault("minItems", 1)
                items = schema.get("items")
                if isinstance(items, dict) and items.get("type") == "string":
                    schema["items"] = {"minLength": 1, **items}
            elif kind == "object":
                schema.setdefault("minProperties", 1)
        text = (cur.description if cur and cur.description else None) or description \
            or schema.get("description")
        if text:
            schema["description"] = text
            self._cap_description(where, text, cur is not None and bool(cur.description),
                                  origin)
        if example is not None and "examples" not in schema:
            schema["examples"] = [example]
        if cur is not None and cur.has_default:
            self._check_value(where, ("default",), cur.default, schema, origin)
            if "default" in schema and not json_equal(schema["default"], cur.default):
                self.warnings.append(self.doc.problem(
                    (*where, "default"), f"default {cur.default!r} differs from the default "
                    f"{schema['default']!r} the spec documents for {origin}",
                    severity="warning", hint=f"facade sends {cur.default!r} when the agent "
                    "leaves it out; if that is meant, say so in the description, else "
                    "remove `default`"))
            schema["default"] = cur.default
            arg = _replace(arg, value=cur.default, has_value=True)
        if name in self.out.properties:
            self.problems.append(self.doc.problem(
                where, f"argument name {name!r} is used by both {self.out.origins[name]} and "
                f"{origin}", hint=f"rename one: params: {{{arg.source}: {{rename: ...}}}}"))
            return
        self.out.properties[name] = schema
        self.out.origins[name] = origin
        if required and not (cur is not None and cur.has_default):
            self.out.required.append(name)
        self.out.arguments.append(_replace(arg, name=name))

    def _cap_description(self, where: tuple[str | int, ...], text: str, own: bool,
                         origin: str) -> None:
        too_long = oversized(text)
        if too_long is None:
            return
        if own:
            self.problems.append(self.doc.problem(
                (*where, "description"), f"the description {too_long}",
                hint="every description is sent with every tools/list: keep what the model "
                "needs to fill in the argument"))
        else:
            self.problems.append(self.doc.problem(
                self.at("operation"), f"the spec's description of {origin} {too_long}",
                hint=f"write a shorter one at {self.section}.{self.tool}.params."
                f"{where[-1]}.description"))

    def _check_value(self, where: tuple[str | int, ...], key: tuple[str], value: Any,
                     schema: dict[str, Any], origin: str) -> None:
        check = {k: v for k, v in schema.items() if k != "$defs"}
        if self.converter.defs:
            check["$defs"] = self.converter.defs
        import jsonschema  # ~30 ms to import: only curations that fix values need it

        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(check).iter_errors(value))
        if error is not None:
            self.problems.append(self.doc.problem(
                (*where, *key), f"{key[0]} {value!r} does not fit {origin}: {error.message}"))


def _without(value: Any, path: list[str]) -> Any:
    """`value` without what `path` names (through arrays, as shaping paths go)."""
    if isinstance(value, list):
        return [_without(v, path) for v in value]
    if not isinstance(value, dict) or not path:
        return value
    if len(path) == 1:
        return {k: v for k, v in value.items() if k != path[0]}
    return {k: _without(v, path[1:]) if k == path[0] else v for k, v in value.items()}


def _replace(arg: Argument, **changes: Any) -> Argument:
    return dataclasses.replace(arg, **changes)


def flatten(doc: YAMLDocument, tool: str, curation: ToolCuration, op: Operation,
            converter: SchemaConverter, problems: list[Problem],
            warnings: list[Problem]) -> Flattened:
    """Build the flat arguments of one tool, appending any problems found."""
    return _Flattener(doc, tool, curation, op, converter, problems, warnings).run()


def path_variables(template: str) -> list[str]:
    return re.findall(r"\{([^{}]+)\}", template)
