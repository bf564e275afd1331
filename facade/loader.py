"""Load time: curation.yaml + the OpenAPI document → a validated, frozen `Facade`.

Every problem found is collected and raised once, as one `CurationError`, so a curator
fixes everything in one pass. Only curated operations are resolved.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from facade.curation import Curation, ToolCuration, parse_curation
from facade.errors import CurationError, LoadError, Problem, SpecError, did_you_mean
from facade.flatten import flatten, path_variables
from facade.schemas import SchemaConverter
from facade.shaping import Shaper, parse_path, schema_has_path
from facade.spec import OpenAPIDocument, OperationRef, load_spec
from facade.tools import (
    READ_ONLY_METHODS,
    BackendSettings,
    Facade,
    HTTPBinding,
    ToolDefinition,
    annotations_for,
)
from facade.yamlsource import YAMLDocument, read_yaml

__all__ = ["DEFAULT_CONFIG", "expand_env", "load"]

DEFAULT_CONFIG = "curation.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, environ: dict[str, str] | os._Environ[str]) -> tuple[str, list[str]]:
    """Expand `${VAR}` and `${VAR:-default}`; also return the names that had no value."""
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        missing.append(name)
        return ""

    return _VAR.sub(sub, text), missing


def load(config: str | Path = DEFAULT_CONFIG, *, environ: dict[str, str] | None = None
         ) -> Facade:
    """Read, validate and compile a curation and its spec.

    Raises:
        CurationError: the curation has problems (all of them are listed).
        SpecError: the OpenAPI document cannot be used.
    """
    doc = read_yaml(config)
    curation = parse_curation(doc)
    return _Loader(doc, curation, Path(config), environ or dict(os.environ)).run()


class _Loader:
    def __init__(self, doc: YAMLDocument, curation: Curation, config: Path,
                 environ: dict[str, str]) -> None:
        self.doc, self.curation, self.config, self.environ = doc, curation, config, environ
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def run(self) -> Facade:
        backend = self._backend()
        spec = self._spec()
        tools = []
        if spec is not None:
            for name, tool in self.curation.tools.items():
                built = self._tool(spec, name, tool)
                if built is not None:
                    tools.append(built)
        if self.problems:
            raise CurationError(self.doc.file, self.problems + self.warnings)
        assert backend is not None and spec is not None  # no problems means both built
        server = self.curation.server
        return Facade(
            name=server.name or (spec.data.get("info") or {}).get("title") or "facade",
            instructions=server.instructions,
            read_only=self.curation.read_only,
            backend=backend,
            tools=tuple(tools),
            config_file=self.doc.file,
            spec_file=spec.display,
            warnings=tuple(self.warnings),
        )

    def _backend(self) -> BackendSettings | None:
        b = self.curation.backend
        url, missing = expand_env(b.base_url, self.environ)
        for name in missing:
            self.problems.append(self.doc.problem(
                ("backend", "base_url"), f"environment variable {name!r} is not set",
                hint=f"export {name}=… or write ${{{name}:-default}}"))
        parts = urlsplit(url)
        if not missing and (parts.scheme not in ("http", "https") or not parts.hostname):
            self.problems.append(self.doc.problem(
                ("backend", "base_url"), f"{url!r} is not an http(s) URL with a host"))
        if parts.username or parts.password:
            self.problems.append(self.doc.problem(
                ("backend", "base_url"), "credentials in the URL are not allowed",
                hint="use backend.auth with an env var name"))
        headers = {}
        for key, value in b.headers.items():
            headers[key], missing = expand_env(value, self.environ)
            for name in missing:
                self.problems.append(self.doc.problem(
                    ("backend", "headers", key), f"environment variable {name!r} is not set"))
        auth = b.auth.model_dump(exclude_none=True) if b.auth else None
        return BackendSettings(url.rstrip("/"), b.timeout, headers, auth, b.max_response_bytes)

    def _spec(self) -> OpenAPIDocument | None:
        path = self.config.parent / self.curation.spec
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "not found"
            self.problems.append(self.doc.problem(
                ("spec",), f"spec file {self.curation.spec!r} {what}",
                hint="`spec` is relative to the curation file"))
            return None
        display = os.path.relpath(path) if not Path(self.curation.spec).is_absolute() \
            else str(path)
        return load_spec(path, display)

    def _tool(self, spec: OpenAPIDocument, name: str, tool: ToolCuration
              ) -> ToolDefinition | None:
        at = ("tools", name, "operation")
        found = spec.find(tool.operation)
        if isinstance(found, list):
            labels = ", ".join(r.label for r in found)
            self.problems.append(self.doc.problem(
                at, f"operationId {tool.operation!r} is used by {len(found)} operations "
                f"({labels})", hint="name the operation as 'METHOD /path'"))
            return None
        if found is None:
            self.problems.append(self.doc.problem(
                at, f"unknown operation {tool.operation!r} in {spec.display}",
                hint=_unknown_hint(spec, tool.operation)))
            return None
        if self.curation.read_only and found.method not in READ_ONLY_METHODS:
            self.problems.append(self.doc.problem(
                at, f"{found.label} is not read-only: a read-only façade serves only GET "
                "and HEAD", hint="remove this tool, or set `read_only: false` at the top"))
            return None
        try:
            return self._build(spec, name, tool, found)
        except SpecError as exc:
            for p in exc.problems:
                self.problems.append(self.doc.problem(
                    at, f"{exc.file}: {p.path[0] if p.path else ''} {p.message}".replace(
                        ":  ", ": "), hint=p.hint))
            return None

    def _build(self, spec: OpenAPIDocument, name: str, tool: ToolCuration,
               ref: OperationRef) -> ToolDefinition | None:
        op = spec.operation(ref)
        inputs = SchemaConverter(spec.resolver, version=spec.version, mode="input")
        before = len(self.problems)
        flat = flatten(self.doc, name, tool, op, inputs, self.problems, self.warnings)
        bound = {a.source for a in flat.arguments if a.location == "path"}
        for var in path_variables(ref.path):
            if var not in bound:
                self.problems.append(self.doc.problem(
                    ("tools", name, "operation"), f"path parameter {{{var}}} of {ref.label} "
                    "is not declared in the spec or is hidden"))
        input_schema: dict[str, Any] = {"type": "object", "properties": flat.properties,
                                        "additionalProperties": False}
        if flat.required:
            input_schema["required"] = flat.required
        input_schema = inputs.bundle(input_schema)
        output, wrap, shaper = self._output(spec, name, tool, op.response)
        if len(self.problems) > before:
            return None
        response = op.response
        return ToolDefinition(
            name=name,
            title=tool.title,
            description=_description(tool, op.summary, op.description, ref),
            input_schema=input_schema,
            output_schema=output,
            wrap_result=wrap,
            annotations=annotations_for(ref.method, self.curation.read_only),
            binding=HTTPBinding(
                method=ref.method, path=ref.path, arguments=tuple(flat.arguments),
                body_media_type=op.body.media_type if op.body else None,
                response_media_type=response.media_type if response else None,
            ),
            shaper=shaper,
            operation=ref.operation_id or ref.label,
        )

    def _output(self, spec: OpenAPIDocument, name: str, tool: ToolCuration, response: Any
                ) -> tuple[dict[str, Any] | None, bool, Shaper]:
        rc = tool.response
        shaper = Shaper(max_items=rc.max_items)
        for key in ("include", "redact"):
            for i, entry in enumerate(getattr(rc, key) or []):
                try:
                    parse_path(entry)
                except ValueError as exc:
                    self.problems.append(self.doc.problem(
                        ("tools", name, "response", key, i), str(exc),
                        hint="dotted names, with [] after an array: items[].id"))
                    return None, True, shaper
        shaper = Shaper.build(rc.include, [*self.curation.redact, *rc.redact], rc.max_items)
        media = (response.media_type or "").split(";")[0].lower() if response else ""
        if response is not None and media and not (media == "application/json"
                                                   or media.endswith("+json")):
            return None, False, shaper  # text results carry no structured content
        outputs = SchemaConverter(spec.resolver, version=spec.version, mode="output")
        raw = outputs.convert(response.schema, response.base) if response else {}
        schema = outputs.bundle(raw)
        self._check_paths(name, rc.include or [], "include", schema)
        self._check_paths(name, [e for e in rc.redact if "." in e or "[]" in e], "redact",
                          schema)
        schema = shaper.apply_schema(schema)
        root = schema.get("$ref")
        if isinstance(root, str) and root.startswith("#/$defs/"):
            # A recursive schema as the whole response: inline its definition at the root.
            schema = {**schema["$defs"][root.removeprefix("#/$defs/")], "$defs": schema["$defs"]}
        if schema.get("type") == "object" and "$ref" not in schema:
            return schema, False, shaper
        defs = schema.pop("$defs", None)
        wrapped: dict[str, Any] = {"type": "object", "properties": {"result": schema},
                                   "required": ["result"], "x-fastmcp-wrap-result": True}
        if defs:
            wrapped["$defs"] = defs
        return wrapped, True, shaper

    def _check_paths(self, name: str, paths: list[str], key: str, schema: dict[str, Any]
                     ) -> None:
        defs = schema.get("$defs", {})
        for i, entry in enumerate(paths):
            if schema_has_path(schema, parse_path(entry), defs) is False:
                top = _top_level_names(schema, defs)
                self.problems.append(self.doc.problem(
                    ("tools", name, "response", key, i),
                    f"{entry!r} is not in the response schema",
                    hint=did_you_mean(entry, top) or (f"top-level fields: {', '.join(top)}"
                                                      if top else None)))


def _unknown_hint(spec: OpenAPIDocument, key: str) -> str:
    if not spec.by_label:
        # Webhook-only documents and schema fixtures: no list of operations would help.
        return "the document defines no operations under `paths`"
    return spec.suggest(key) or "use an operationId or 'METHOD /path'; `facade init` lists them"


def _top_level_names(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    while isinstance(schema, dict):
        if isinstance(schema.get("properties"), dict):
            return sorted(schema["properties"])
        if isinstance(schema.get("items"), dict):
            schema = schema["items"]
        elif isinstance(schema.get("$ref"), str):
            schema = defs.get(schema["$ref"].removeprefix("#/$defs/"), {})
        else:
            return []
    return []


def _description(tool: ToolCuration, summary: str | None, description: str | None,
                 ref: OperationRef) -> str:
    if tool.description:
        return tool.description.strip()
    parts = [p.strip() for p in (summary, description) if isinstance(p, str) and p.strip()]
    if len(parts) == 2 and parts[1].startswith(parts[0]):
        parts = parts[1:]
    return "\n\n".join(parts) or f"{ref.label}"


def check(config: str | Path = DEFAULT_CONFIG) -> tuple[Facade | None, LoadError | None]:
    """Load, returning the error instead of raising it (for the CLI and reloads)."""
    try:
        return load(config), None
    except LoadError as exc:
        return None, exc
