"""Swagger 2.0 conversion of an operation's parts: parameters, bodies, responses, schemas.

`PartConverter` holds the rewrites of the nodes inside an operation. Rewriting a `$ref` needs
the whole conversion's state (which files are converted, what is queued), so `ref` is left
to `facade.loading.swagger2.converter.Converter`, which builds on this class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from facade.errors import SpecError
from facade.loading.refs import RefResolver, pointer_tokens
from facade.loading.swagger2.issues import Issue
from facade.loading.swagger2.nodes import (
    FORM_TYPES,
    FORMATS_HINT,
    PARAM_SCHEMA,
    QUERY_STYLES,
    SIMPLE_STYLES,
    At,
    extensions,
)

__all__ = ["PartConverter"]


class PartConverter(ABC):
    root: Path  # the root document
    resolver: RefResolver  # over the 2.0 files
    consumes: tuple[str, ...]
    produces: tuple[str, ...]

    def issue(self, at: At, message: str, hint: str | None = None, *,
              lossy: bool = False) -> Issue:
        return Issue(self.resolver.name(at.base), at.pointer, message, hint, lossy)

    @abstractmethod
    def ref(self, ref: str, at: At, kind: str, context: Any) -> Any:
        """`ref` rewritten for where the converted node lands."""

    def parameter_entry(self, entry: Any, at: At, issues: list[Issue],
                        bodies: list[tuple[dict[str, Any], At, Any]]) -> Any:
        """A 3.0 parameter (or its ref); None for body and formData ones, which are
        appended to `bodies` as (resolved parameter, where it is, the entry)."""
        value, where = entry, at
        if isinstance(entry, dict) and isinstance(entry.get("$ref"), str):
            try:
                value, file, key = self.resolver.resolve(entry["$ref"], at.base)
            except SpecError as exc:
                issues.append(self.issue(at, exc.problems[0].message, exc.problems[0].hint))
                return None
            where = At(file, at.home, tuple(pointer_tokens(key.partition("#")[2])))
        if not isinstance(value, dict) or not isinstance(value.get("in"), str):
            return entry  # malformed: facade.loading.spec names it when the operation is curated
        if value["in"] in ("body", "formData"):
            bodies.append((value, where, entry))
            return None
        converted, found = self.parameter(value, where)
        issues += found
        if value is entry:
            return converted
        return {**entry, "$ref": self.ref(entry["$ref"], at, "parameter", None)}

    def parameter(self, param: dict[str, Any], at: At) -> tuple[dict[str, Any], list[Issue]]:
        location = str(param.get("in"))
        issues: list[Issue] = []
        out: dict[str, Any] = {k: param[k] for k in ("name", "in", "description", "required",
                                                     "deprecated", "allowEmptyValue")
                               if k in param}
        style = self.collection(param, at, location, issues)
        if style is not None:
            out["style"], out["explode"] = style
        if "x-example" in param:
            out["example"] = param["x-example"]
        out["schema"] = self.param_schema(param, at, location, issues)
        out.update(extensions(param))
        return out, issues

    def param_schema(self, param: dict[str, Any], at: At, location: str,
                     issues: list[Issue]) -> dict[str, Any]:
        if "$ref" in param or "schema" in param:  # not a 2.0 parameter: a schema
            converted: dict[str, Any] = self.schema(param.get("schema", param), at)
            return converted
        out = {k: param[k] for k in PARAM_SCHEMA if k in param}
        items = param.get("items")
        if isinstance(items, dict):
            if items.get("type") == "array":
                issues.append(self.issue(at, f"{location} parameter {param.get('name')!r} is "
                                         "an array of arrays, which OpenAPI 3 parameter "
                                         "styles cannot serialize", lossy=True))
            out["items"] = self.param_schema(items, at.child("items"), location, [])
        if out.get("type") == "file":
            out.update(type="string", format="binary")
            if location != "formData":
                issues.append(self.issue(at, f"{location} parameter {param.get('name')!r} has "
                                         "`type: file`, which Swagger 2.0 allows only in "
                                         "formData"))
        if param.get("x-nullable") is True:
            out["nullable"] = True
        return out

    def collection(self, param: dict[str, Any], at: At, location: str,
                   issues: list[Issue]) -> tuple[str, bool] | None:
        """`collectionFormat` as 3.0 `style` and `explode`; None when not an array."""
        if param.get("type") != "array":
            return None
        fmt = param.get("collectionFormat", "csv")
        table = QUERY_STYLES if location in ("query", "formData") else SIMPLE_STYLES
        if fmt in table:
            return table[fmt]
        what = f"collectionFormat {fmt!r} of {location} parameter {param.get('name')!r}"
        if fmt == "tsv":
            message = f"{what} (tab-separated) has no OpenAPI 3 equivalent"
        elif fmt in QUERY_STYLES:
            message = f"{what} has no OpenAPI 3 equivalent for a {location} parameter"
        else:
            message = f"{what} is not a Swagger 2.0 collection format"
        issues.append(self.issue(at, message, FORMATS_HINT, lossy=True))
        return table["csv"]

    def request_body(self, bodies: list[tuple[dict[str, Any], At, Any]],
                     consumes: tuple[str, ...], at: At, issues: list[Issue]) -> Any:
        kinds = [value["in"] for value, _, _ in bodies]
        if kinds.count("body") > 1 or ("body" in kinds and "formData" in kinds):
            what = "more than one body parameter" if "formData" not in kinds else \
                "both a body parameter and formData parameters"
            issues.append(self.issue(at, f"the operation has {what}; Swagger 2.0 allows one "
                                     "body, or form fields, not both"))
        if "formData" in kinds:
            return self.form([(v, w) for v, w, _ in bodies if v["in"] == "formData"],
                             consumes, at, issues)
        value, where, entry = bodies[0]
        ref = entry.get("$ref") if isinstance(entry, dict) else None
        if isinstance(ref, str) and ref.startswith("#/parameters/") and at.base == self.root \
                and consumes == self.consumes:
            return {"$ref": self.ref(ref, at, "parameter", None)}
        return self.body(value, where._replace(home=at.home), consumes)

    def body(self, param: dict[str, Any], at: At, consumes: tuple[str, ...]) -> Any:
        schema = self.schema(param.get("schema", {}), at)
        out: dict[str, Any] = {"description": param["description"]} \
            if "description" in param else {}
        out["content"] = {media: {"schema": schema} for media in consumes}
        if param.get("required") is True:
            out["required"] = True
        out.update(extensions(param))
        return out

    def form(self, fields: list[tuple[dict[str, Any], At]], consumes: tuple[str, ...],
             at: At, issues: list[Issue]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        encoding: dict[str, Any] = {}
        for param, where in fields:
            name = str(param.get("name"))
            where = where._replace(home=at.home)
            field = self.param_schema(param, where, "formData", issues)
            if param.get("type") == "file":
                issues.append(self.issue(where, f"formData parameter {name!r} is a file "
                                         "upload; facade sends form fields as text and "
                                         "cannot upload files"))
            if "description" in param:
                field = {"description": param["description"], **field}
            props[name] = field
            if param.get("required") is True:
                required.append(name)
            style = self.collection(param, where, "formData", issues)
            if style is not None:
                encoding[name] = {"style": style[0], "explode": style[1]}
        files = any(p.get("type") == "file" for p, _ in fields)
        media = [m for m in consumes if m.split(";")[0].strip().lower() in FORM_TYPES] or \
            ["multipart/form-data" if files else "application/x-www-form-urlencoded"]
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            schema["required"] = required
        extra = {"encoding": encoding} if encoding else {}
        out: dict[str, Any] = {"content": {m: {"schema": schema, **extra} for m in media}}
        if required:
            out["required"] = True
        return out

    def responses(self, responses: Any, at: At, produces: tuple[str, ...]) -> Any:
        if not isinstance(responses, dict):
            return responses
        return {str(code): self.response(r, at.child(code), produces)
                for code, r in responses.items()}

    def response(self, response: Any, at: At, produces: tuple[str, ...]) -> Any:
        if not isinstance(response, dict):
            return response
        if isinstance(response.get("$ref"), str):
            ref = self.ref(response["$ref"], at, "response", produces)
            if ref is not None:
                return {**response, "$ref": ref}
            try:  # referred to with other `produces` than its first user: a copy here
                value, file, key = self.resolver.resolve(response["$ref"], at.base)
            except SpecError:
                return response  # facade.loading.spec reports it if the operation is curated
            return self.response(value, At(file, at.home, tuple(pointer_tokens(
                key.partition("#")[2]))), produces)
        out: dict[str, Any] = {"description": response.get("description", "")}
        if isinstance(response.get("headers"), dict):
            out["headers"] = {name: self.header(h, at) for name, h
                              in response["headers"].items()}
        content: dict[str, Any] = {}
        schema = {"schema": self.schema(response["schema"], at)} if "schema" in response \
            else {}
        if schema:
            content = {media: dict(schema) for media in produces}
        examples = response.get("examples")
        for media, example in examples.items() if isinstance(examples, dict) else ():
            content[media] = {**content.get(media, schema), "example": example}
        if content:
            out["content"] = content
        out.update(extensions(response))
        return out

    def header(self, header: Any, at: At) -> Any:
        if not isinstance(header, dict):
            return header
        out = {"description": header["description"]} if "description" in header else {}
        out["schema"] = self.param_schema(header, at, "header", [])
        return {**out, **extensions(header)}

    # -- schemas and references ---------------------------------------------------------

    def schema(self, schema: Any, at: At) -> Any:
        """A 2.0 schema in 3.0 form. `at` stays that of the enclosing node: schemas hold
        no issues, so pointers are not worth building for each of their nodes."""
        if not isinstance(schema, dict):
            return schema
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = self.ref(value, at, "schema", None)
            elif key in ("properties", "patternProperties", "definitions") and \
                    isinstance(value, dict):
                out[key] = {name: self.schema(s, at) for name, s in value.items()}
            elif key in ("allOf", "anyOf", "oneOf", "items") and isinstance(value, list):
                out[key] = [self.schema(s, at) for s in value]
            elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
                out[key] = self.schema(value, at)
            elif key == "discriminator" and isinstance(value, str):
                out[key] = {"propertyName": value}
            else:
                out[key] = value
        if out.get("type") == "file":
            out.update(type="string", format="binary")
        if out.get("x-nullable") is True:
            out.setdefault("nullable", True)
        return out

    def parameter_node(self, node: Any, at: At) -> Any:
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            return {**node, "$ref": self.ref(node["$ref"], at, "parameter", None)}
        if isinstance(node, dict) and node.get("in") == "body":
            return self.body(node, at, self.consumes)
        if isinstance(node, dict) and isinstance(node.get("in"), str) and \
                node["in"] != "formData":
            return self.parameter(node, at)[0]
        return node  # formData fields are copied into each operation's form body
