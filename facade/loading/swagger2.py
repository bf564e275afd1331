"""Swagger 2.0 → OpenAPI 3.0, in memory, once per load.

The rest of facade reads OpenAPI 3 only: a Swagger 2.0 document is converted as it is
loaded, the root file and every file its `$ref`s reach, in one walk. Operations are still
resolved lazily afterwards, by `facade.loading.spec`. The README's "Swagger 2.0" section lists
what becomes what: `definitions` → `components.schemas` (refs into other files keep their
file part and get the new pointer, and those files are converted in place), a body
parameter → `requestBody`, `formData` → a form body, `collectionFormat` → `style` and
`explode`, response `schema` → `content` per `produces` type, `securityDefinitions` →
`securitySchemes`, `host`/`basePath`/`schemes` → `servers`. `x-` extensions are kept.

What cannot be converted is an `Issue` of the operation holding it: curating that
operation fails with the issue's file, JSON pointer and reason, and the rest of the
document stays usable. Issues the 3.0 document cannot even express (`collectionFormat:
tsv`) are also warnings, for the operations nobody curated.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

from facade.errors import LoadError, Problem, SpecError
from facade.loading.refs import RefResolver

__all__ = ["Conversion", "Issue", "convert"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_SECTIONS = {"definitions": "schemas", "parameters": "parameters", "responses": "responses"}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_JSON = ("application/json",)
_PARAM_SCHEMA = ("type", "format", "default", "maximum", "exclusiveMaximum", "minimum",
                 "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
                 "minItems", "uniqueItems", "enum", "multipleOf")
_QUERY_STYLES = {"csv": ("form", False), "ssv": ("spaceDelimited", False),
                 "pipes": ("pipeDelimited", False), "multi": ("form", True)}
_SIMPLE_STYLES = {"csv": ("simple", False)}
_FLOWS = {"implicit": "implicit", "password": "password", "application": "clientCredentials",
          "accessCode": "authorizationCode"}
_OPERATION_KEYS = ("tags", "summary", "description", "externalDocs", "operationId")
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_FORMATS_HINT = "use csv, ssv, pipes or multi in the spec, or do not curate this operation"


@dataclass(frozen=True)
class Issue:
    """Something in an operation that cannot be converted, and where it is."""

    file: str  # as shown in messages
    pointer: str  # JSON pointer into that file, in its 2.0 layout
    message: str
    hint: str | None = None
    lossy: bool = False  # the 3.0 document cannot express it: also a warning

    def problem(self, severity: str = "error") -> Problem:
        return Problem((self.pointer,), self.message, hint=self.hint, file=self.file,
                       severity=severity)


@dataclass
class Conversion:
    """The 3.0 document, the other files as converted, and issues by operation label."""

    document: dict[str, Any]
    files: dict[Path, Any]
    issues: dict[str, list[Issue]] = field(default_factory=dict)

    def error(self, label: str) -> SpecError | None:
        """Why operation `label` (`GET /pets`) cannot be used; None when it can."""
        issues = self.issues.get(label)
        if not issues:
            return None
        first = issues[0]
        error = SpecError(first.file, first.message, pointer=first.pointer, hint=first.hint)
        same = [i.problem() for i in issues if i.file == first.file]
        if len(same) > 1:  # every problem of that file at once
            LoadError.__init__(error, first.file, same)
        return error

    def warnings(self, curated: set[str]) -> list[Problem]:
        """One warning per lossy construct, naming the operations (not in `curated`)
        that would fail if curated."""
        users: dict[Issue, list[str]] = {}
        for label, issues in self.issues.items():
            if label not in curated:
                for issue in issues:
                    if issue.lossy and label not in users.setdefault(issue, []):
                        users[issue].append(label)
        return [replace(issue, message=f"{issue.message}; curating {' or '.join(labels)} "
                        "will fail").problem("warning") for issue, labels in users.items()]


def convert(file: Path, data: dict[str, Any], *, display: str) -> Conversion:
    """Convert a parsed Swagger 2.0 document (and the files it refers to).

    Raises:
        SpecError: the document says it is a Swagger version other than 2.0.
    """
    version = str(data.get("swagger"))
    if version != "2.0":
        raise SpecError(display, f"Swagger {version} documents are not supported; facade "
                        "reads Swagger 2.0, OpenAPI 3.0 and 3.1", pointer="#/swagger")
    converter = _Converter(file.resolve(), data, display)
    return Conversion(converter.document(data), converter.files, converter.issues)


class _At(NamedTuple):
    """Where a 2.0 node is (`base`, `parts` of its JSON pointer) and which file its 3.0
    form lands in (`home`). A tuple: a large document makes hundreds of thousands."""

    base: Path
    home: Path
    parts: tuple[str | int, ...] = ()

    def child(self, *parts: str | int) -> _At:
        return _At(self.base, self.home, self.parts + parts)

    @property
    def pointer(self) -> str:
        return "/".join(["#", *(str(p).replace("~", "~0").replace("/", "~1")
                                for p in self.parts)])


def _media(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return default


def _extensions(node: dict[str, Any]) -> dict[str, Any]:
    return {k: node[k] for k in node if isinstance(k, str) and k[:2] == "x-"}


def _tokens(pointer: str) -> list[str]:
    return [unquote(t).replace("~1", "/").replace("~0", "~") for t in pointer.split("/") if t]


def _walk(doc: Any, pointer: str | list[str]) -> Any:
    for token in _tokens(pointer) if isinstance(pointer, str) else pointer:
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list) and token.isdigit() and int(token) < len(doc):
            doc = doc[int(token)]
        else:
            raise KeyError(pointer)
    return doc


def _relocate(data: Any) -> Any:
    """Move a file's top-level `definitions`/`parameters`/`responses` maps under
    `components`, where the rewritten refs point."""
    if not isinstance(data, dict) or not any(isinstance(data.get(s), dict) for s in _SECTIONS):
        return data
    out = {k: v for k, v in data.items() if not (k in _SECTIONS and isinstance(v, dict))}
    components = out.setdefault("components", {})
    for section, target in _SECTIONS.items():
        for name, node in (data.get(section) or {}).items() if isinstance(
                data.get(section), dict) else ():
            body = section == "parameters" and isinstance(node, dict) and node.get("in") == "body"
            components.setdefault("requestBodies" if body else target, {})[name] = node
    return out


def _servers(data: dict[str, Any]) -> list[dict[str, str]]:
    host, base = data.get("host"), data.get("basePath") or ""
    schemes = [s for s in data.get("schemes") or [] if isinstance(s, str)]
    if isinstance(host, str) and host:
        return [{"url": f"{s}://{host}{base}"} for s in schemes] or [{"url": f"//{host}{base}"}]
    return [{"url": base}] if base else []


def _security_scheme(scheme: Any) -> Any:
    if not isinstance(scheme, dict):
        return scheme
    kind = scheme.get("type")
    out: dict[str, Any]
    if kind == "basic":
        out = {"type": "http", "scheme": "basic"}
    elif kind == "apiKey":
        out = {"type": "apiKey", "name": scheme.get("name"), "in": scheme.get("in")}
    elif kind == "oauth2" and scheme.get("flow") in _FLOWS:
        flow = {k: scheme[k] for k in ("authorizationUrl", "tokenUrl") if k in scheme}
        out = {"type": "oauth2", "flows": {_FLOWS[scheme["flow"]]: {
            **flow, "scopes": scheme.get("scopes") or {}}}}
    else:
        return scheme
    if "description" in scheme:
        out["description"] = scheme["description"]
    return {**out, **_extensions(scheme)}


class _Converter:
    def __init__(self, root: Path, data: dict[str, Any], display: str) -> None:
        self.root = root
        self.resolver = RefResolver(root, data, display=display)  # over the 2.0 files
        self.consumes = _media(data.get("consumes"), _JSON)
        self.produces = _media(data.get("produces"), _JSON)
        self.files: dict[Path, Any] = {}
        self.issues: dict[str, list[Issue]] = {}
        # Nodes of other files to convert in place: (file, pointer, kind) → context.
        self.claimed: dict[tuple[Path, str, str], Any] = {}
        self.queue: list[tuple[Path, str, str, Any]] = []
        self.parts: dict[Path, list[tuple[str, Any]]] = {}  # nodes put into each file

    def issue(self, at: _At, message: str, hint: str | None = None, *,
              lossy: bool = False) -> Issue:
        return Issue(self.resolver.name(at.base), at.pointer, message, hint, lossy)

    # -- the document ------------------------------------------------------------------

    def document(self, data: dict[str, Any]) -> dict[str, Any]:
        at = _At(self.root, self.root)
        out: dict[str, Any] = {"openapi": "3.0.3"}
        if "info" in data:
            out["info"] = data["info"]
        if servers := _servers(data):
            out["servers"] = servers
        paths = data.get("paths", {})
        out["paths"] = {str(path): self.path_item(item, at.child("paths", str(path)), str(path))
                        for path, item in paths.items()} if isinstance(paths, dict) else paths
        if components := self.components(data, at):
            out["components"] = components
        for key in ("security", "tags", "externalDocs"):
            if key in data:
                out[key] = data[key]
        out.update(_extensions(data))
        self.drain()
        return out

    def components(self, data: dict[str, Any], at: _At) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        if isinstance(data.get("definitions"), dict):
            out["schemas"] = {name: self.schema(s, at) for name, s in data["definitions"].items()}
        for name, param in (data.get("parameters") or {}).items() if isinstance(
                data.get("parameters"), dict) else ():
            where = at.child("parameters", name)
            if isinstance(param, dict) and param.get("in") == "body":
                out.setdefault("requestBodies", {})[name] = self.body(param, where, self.consumes)
            elif isinstance(param, dict) and param.get("in") != "formData":
                # formData parameters have no 3.0 counterpart: operations inline them.
                out.setdefault("parameters", {})[name] = self.parameter(param, where)[0]
        if isinstance(data.get("responses"), dict):
            out["responses"] = {str(code): self.response(r, at.child("responses", code),
                                                         self.produces)
                                for code, r in data["responses"].items()}
        if isinstance(data.get("securityDefinitions"), dict):
            out["securitySchemes"] = {name: _security_scheme(s) for name, s
                                      in data["securityDefinitions"].items()}
        return out

    def path_item(self, item: Any, at: _At, path: str) -> Any:
        if not isinstance(item, dict):
            return item
        if isinstance(item.get("$ref"), str):
            return {**item, "$ref": self.ref(item["$ref"], at, "pathitem", path)}
        out: dict[str, Any] = {}
        shared: list[Any] = []
        pushed: list[tuple[dict[str, Any], _At, Any]] = []
        issues: list[Issue] = []
        params = item.get("parameters")
        for i, entry in enumerate(params if isinstance(params, list) else []):
            converted = self.parameter_entry(entry, at.child("parameters", i), issues, pushed)
            if converted is not None:
                shared.append(converted)
        if shared:
            out["parameters"] = shared
        for method in _METHODS:
            if method in item:
                out[method] = self.operation(item[method], at.child(method), path, method,
                                             pushed, issues)
        out.update(_extensions(item))
        return out

    # -- operations --------------------------------------------------------------------

    def operation(self, op: Any, at: _At, path: str, method: str,
                  inherited: list[tuple[dict[str, Any], _At, Any]],
                  shared_issues: list[Issue]) -> Any:
        if not isinstance(op, dict):
            return op
        issues = list(shared_issues)
        consumes = _media(op.get("consumes"), self.consumes)
        produces = _media(op.get("produces"), self.produces)
        out = {k: op[k] for k in _OPERATION_KEYS if k in op}
        params: list[Any] = []
        bodies: list[tuple[dict[str, Any], _At, Any]] = []
        entries = op.get("parameters")
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            converted = self.parameter_entry(entry, at.child("parameters", i), issues, bodies)
            if converted is not None:
                params.append(converted)
        own = {(b[0].get("name"), b[0].get("in")) for b in bodies}
        bodies += [b for b in inherited if (b[0].get("name"), b[0].get("in")) not in own]
        if params:
            out["parameters"] = params
        if bodies:
            out["requestBody"] = self.request_body(bodies, consumes, at, issues)
        out["responses"] = self.responses(op.get("responses"), at.child("responses"), produces)
        out.update({k: op[k] for k in ("deprecated", "security") if k in op})
        out.update(_extensions(op))
        if issues:
            self.issues.setdefault(f"{method.upper()} {path}", []).extend(issues)
        return out

    def parameter_entry(self, entry: Any, at: _At, issues: list[Issue],
                        bodies: list[tuple[dict[str, Any], _At, Any]]) -> Any:
        """A 3.0 parameter (or its ref); None for body and formData ones, which are
        appended to `bodies` as (resolved parameter, where it is, the entry)."""
        value, where = entry, at
        if isinstance(entry, dict) and isinstance(entry.get("$ref"), str):
            try:
                value, file, key = self.resolver.resolve(entry["$ref"], at.base)
            except SpecError as exc:
                issues.append(self.issue(at, exc.problems[0].message, exc.problems[0].hint))
                return None
            where = _At(file, at.home, tuple(_tokens(key.partition("#")[2])))
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

    def parameter(self, param: dict[str, Any], at: _At) -> tuple[dict[str, Any], list[Issue]]:
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
        out.update(_extensions(param))
        return out, issues

    def param_schema(self, param: dict[str, Any], at: _At, location: str,
                     issues: list[Issue]) -> dict[str, Any]:
        if "$ref" in param or "schema" in param:  # not a 2.0 parameter: a schema
            converted: dict[str, Any] = self.schema(param.get("schema", param), at)
            return converted
        out = {k: param[k] for k in _PARAM_SCHEMA if k in param}
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

    def collection(self, param: dict[str, Any], at: _At, location: str,
                   issues: list[Issue]) -> tuple[str, bool] | None:
        """`collectionFormat` as 3.0 `style` and `explode`; None when not an array."""
        if param.get("type") != "array":
            return None
        fmt = param.get("collectionFormat", "csv")
        table = _QUERY_STYLES if location in ("query", "formData") else _SIMPLE_STYLES
        if fmt in table:
            return table[fmt]
        what = f"collectionFormat {fmt!r} of {location} parameter {param.get('name')!r}"
        if fmt == "tsv":
            message = f"{what} (tab-separated) has no OpenAPI 3 equivalent"
        elif fmt in _QUERY_STYLES:
            message = f"{what} has no OpenAPI 3 equivalent for a {location} parameter"
        else:
            message = f"{what} is not a Swagger 2.0 collection format"
        issues.append(self.issue(at, message, _FORMATS_HINT, lossy=True))
        return table["csv"]

    def request_body(self, bodies: list[tuple[dict[str, Any], _At, Any]],
                     consumes: tuple[str, ...], at: _At, issues: list[Issue]) -> Any:
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

    def body(self, param: dict[str, Any], at: _At, consumes: tuple[str, ...]) -> Any:
        schema = self.schema(param.get("schema", {}), at)
        out: dict[str, Any] = {"description": param["description"]} \
            if "description" in param else {}
        out["content"] = {media: {"schema": schema} for media in consumes}
        if param.get("required") is True:
            out["required"] = True
        out.update(_extensions(param))
        return out

    def form(self, fields: list[tuple[dict[str, Any], _At]], consumes: tuple[str, ...],
             at: _At, issues: list[Issue]) -> dict[str, Any]:
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
        media = [m for m in consumes if m.split(";")[0].strip().lower() in _FORM_TYPES] or \
            ["multipart/form-data" if files else "application/x-www-form-urlencoded"]
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            schema["required"] = required
        extra = {"encoding": encoding} if encoding else {}
        out: dict[str, Any] = {"content": {m: {"schema": schema, **extra} for m in media}}
        if required:
            out["required"] = True
        return out

    def responses(self, responses: Any, at: _At, produces: tuple[str, ...]) -> Any:
        if not isinstance(responses, dict):
            return responses
        return {str(code): self.response(r, at.child(code), produces)
                for code, r in responses.items()}

    def response(self, response: Any, at: _At, produces: tuple[str, ...]) -> Any:
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
            return self.response(value, _At(file, at.home, tuple(_tokens(
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
        out.update(_extensions(response))
        return out

    def header(self, header: Any, at: _At) -> Any:
        if not isinstance(header, dict):
            return header
        out = {"description": header["description"]} if "description" in header else {}
        out["schema"] = self.param_schema(header, at, "header", [])
        return {**out, **_extensions(header)}

    # -- schemas and references ---------------------------------------------------------

    def schema(self, schema: Any, at: _At) -> Any:
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

    def ref(self, ref: str, at: _At, kind: str, context: Any) -> Any:
        """`ref` rewritten for where the converted node lands; other files' targets are
        queued for conversion in place. None when the target, a response, must be copied
        because this user's `produces` differ from those it was converted with."""
        where, hashed, pointer = ref.partition("#")
        if _REMOTE.match(where):
            return ref  # refused by facade.loading.refs when resolved
        target = (at.base.parent / unquote(where)).resolve() if where else at.base
        try:
            new = self.pointer(target, pointer)
        except (SpecError, KeyError):
            return ref  # facade.loading.refs names the missing file or target when resolved
        if target == self.root:
            if kind == "response" and context != self.produces:
                return None
        else:
            key = (target, pointer, kind)
            if key not in self.claimed:
                self.claimed[key] = context
                self.queue.append((target, pointer, kind, context))
            elif self.claimed[key] != context:
                if kind == "response":
                    return None
                self.queue.append((target, pointer, kind, context))  # its issues, per path
        if at.base == at.home:
            prefix = where
        else:
            prefix = "" if target == at.home else \
                Path(os.path.relpath(target, at.home.parent)).as_posix()
        if not prefix and not hashed:
            return "#"
        return prefix + (f"#{new}" if hashed else "")

    def pointer(self, target: Path, pointer: str) -> str:
        """`/definitions/X/…` → `/components/schemas/X/…` (and so on) in `target`."""
        parts = pointer.split("/")
        if len(parts) < 3 or parts[0] != "" or parts[1] not in _SECTIONS:
            return pointer
        section = self.resolver.document(target).get(parts[1]) \
            if isinstance(self.resolver.document(target), dict) else None
        if not isinstance(section, dict):
            return pointer
        name = _SECTIONS[parts[1]]
        if parts[1] == "parameters":
            param = section.get(parts[2].replace("~1", "/").replace("~0", "~"))
            if isinstance(param, dict) and param.get("in") == "body":
                name = "requestBodies"
        return "/".join(("", "components", name, *parts[2:]))

    def drain(self) -> None:
        """Convert, in place in a copy of their file, the nodes other files' refs reach."""
        while self.queue:
            target, pointer, kind, context = self.queue.pop()
            try:
                node = _walk(self.resolver.document(target), pointer)
            except (SpecError, KeyError):
                continue  # facade.loading.refs reports it when the ref is resolved
            at = _At(target, target, tuple(_tokens(pointer)))
            if kind == "schema":
                converted = self.schema(node, at)
            elif kind == "parameter":
                converted = self.parameter_node(node, at)
            elif kind == "response":
                converted = self.response(node, at, context)
            else:
                converted = self.path_item(node, at, context)
            self.put(target, self.pointer(target, pointer), converted)

    def parameter_node(self, node: Any, at: _At) -> Any:
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            return {**node, "$ref": self.ref(node["$ref"], at, "parameter", None)}
        if isinstance(node, dict) and node.get("in") == "body":
            return self.body(node, at, self.consumes)
        if isinstance(node, dict) and isinstance(node.get("in"), str) and \
                node["in"] != "formData":
            return self.parameter(node, at)[0]
        return node  # formData fields are copied into each operation's form body

    def put(self, target: Path, pointer: str, value: Any) -> None:
        """Place a converted node in its file's converted copy. A whole file converted
        after some of its nodes keeps them: they are placed again."""
        if pointer == "":
            self.files[target] = _relocate(value)
            for earlier, node in self.parts.get(target, []):
                self.place(target, earlier, node)
            return
        self.parts.setdefault(target, []).append((pointer, value))
        self.place(target, pointer, value)

    def place(self, target: Path, pointer: str, value: Any) -> None:
        if target not in self.files:
            self.files[target] = _relocate(copy.deepcopy(self.resolver.document(target)))
        *parents, last = _tokens(pointer)
        try:
            node = _walk(self.files[target], parents)
            if isinstance(node, list):
                node[int(last)] = value
            else:
                node[last] = value
        except (KeyError, ValueError, IndexError, TypeError):
            pass  # not where a ref can reach: facade.loading.refs reports the ref if it is used
