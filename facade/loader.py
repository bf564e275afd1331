"""Load time: curation.yaml + the OpenAPI document → a validated, frozen `Facade`.

Every problem found is collected and raised once, as one `CurationError`, so a curator
fixes everything in one pass. Only curated operations are resolved.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from facade.curation import Curation, MultiCuration, ToolCuration, parse_any_curation
from facade.errors import (
    CurationError,
    LoadError,
    PathPart,
    Problem,
    SpecError,
    did_you_mean,
)
from facade.extras import build_prompts, check_resource
from facade.flatten import flatten, is_forbidden_header, path_variables
from facade.lint import TextFindings, clean_schema, clean_text
from facade.schemas import (
    MAX_TOOL_BYTES,
    OverBudget,
    SchemaConverter,
    budget_note,
    fit_schema,
    json_size,
)
from facade.serving import serve_settings, tool_problems
from facade.shaping import Shaper, parse_path, schema_has_path
from facade.spec import OpenAPIDocument, OperationRef, load_spec
from facade.tools import (
    READ_ONLY_METHODS,
    BackendSettings,
    Facade,
    HTTPBinding,
    ResourceDefinition,
    ToolDefinition,
    annotations_for,
)
from facade.yamlsource import YAMLDocument, read_yaml

__all__ = ["DEFAULT_CONFIG", "Compiled", "compile_facade", "expand_env", "load"]

DEFAULT_CONFIG = "curation.yaml"
# Inbound headers that carry the caller's credentials: never forwarded to the backend.
_CREDENTIAL_HEADERS = frozenset({"x-api-key", "api-key", "x-auth-token", "x-access-token",
                                 "x-csrf-token", "set-cookie", "mcp-session-id"})
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


def load(config: str | Path = DEFAULT_CONFIG, *, environ: dict[str, str] | None = None,
         compiled: Compiled | None = None) -> Facade:
    """Read, validate and compile a curation and its spec.

    With `compiled` (tools a `facade build` artifact stored), the spec is not read: only
    the curation's environment-dependent settings are derived.

    Raises:
        CurationError: the curation has problems (all of them are listed).
        SpecError: the OpenAPI document cannot be used.
    """
    return compile_facade(config, environ=environ, compiled=compiled)[0]


def compile_facade(config: str | Path = DEFAULT_CONFIG, *,
                   environ: dict[str, str] | None = None, compiled: Compiled | None = None
                   ) -> tuple[Facade, Compiled]:
    """`load`, also returning the spec-derived part, with the spec files it read."""
    doc = read_yaml(config)
    curation = parse_any_curation(doc)
    if isinstance(curation, MultiCuration):
        from facade.multi import compile_multi

        return compile_multi(doc, curation, Path(config), environ or dict(os.environ),
                             compiled)
    loader = _Loader(doc, curation, Path(config), environ or dict(os.environ))
    facade = loader.run(compiled)
    assert loader.compiled is not None  # run() raised otherwise
    return facade, loader.compiled


@dataclass(frozen=True)
class Compiled:
    """What load time derives from the spec: the part of a `Facade` an artifact stores."""

    name: str  # the server name: the curation's, else the spec's title
    tools: tuple[ToolDefinition, ...]
    warnings: tuple[Problem, ...]  # found while building the tools
    sources: tuple[Path, ...]  # every spec file read, the root document first
    resources: tuple[ResourceDefinition, ...] = ()


class _Loader:
    def __init__(self, doc: YAMLDocument, curation: Curation, config: Path,
                 environ: dict[str, str]) -> None:
        self.doc, self.curation, self.config, self.environ = doc, curation, config, environ
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.compiled: Compiled | None = None
        self.section = "tools"  # where in the curation the operation being built is

    def run(self, compiled: Compiled | None = None) -> Facade:
        """The façade; from `compiled` tools (an artifact's) when given, else from the spec.
        The backend and `server:` settings are derived here either way: they depend on the
        environment, which an artifact never stores."""
        backend = self._backend()
        serving = serve_settings(self.curation.server, self._expand, self.problems, self.doc)
        path, display = self._spec_path()
        if compiled is None:
            compiled = self.compile(path, display)
        self.compiled = compiled
        prompts = build_prompts(self.doc, self.curation.prompts, list(self.curation.tools),
                                self.problems, self.warnings)
        if self.problems:
            found = compiled.warnings if compiled else ()
            raise CurationError(self.doc.file, [*self.problems, *self.warnings, *found])
        assert backend is not None and compiled is not None  # no problems means both built
        return Facade(
            name=compiled.name,
            instructions=self.curation.server.instructions,
            read_only=self.curation.read_only,
            backend=backend,
            tools=compiled.tools,
            config_file=self.doc.file,
            spec_file=display,
            warnings=(*self.warnings, *compiled.warnings),
            serving=serving,
            resources=compiled.resources,
            prompts=prompts,
        )

    def compile(self, path: Path, display: str) -> Compiled | None:
        """Build the tools from the spec. The parsed spec is dropped when this returns."""
        spec = self._spec(path, display)
        if spec is None:
            return None
        before = len(self.warnings)
        tools = []
        for name, tool in self.curation.tools.items():
            built = self._tool(spec, name, tool)
            if built is not None:
                tools.append(built)
        resources = self._resources(spec)
        self.warnings += spec.conversion_warnings()  # Swagger 2.0 constructs 3.0 lacks
        warnings = tuple(self.warnings[before:])
        del self.warnings[before:]
        title = (spec.data.get("info") or {}).get("title")
        named = self.curation.server.name or (title if isinstance(title, str) else None)
        return Compiled(named or "facade", tuple(tools), warnings, spec.resolver.files,
                        resources=resources)

    def _resources(self, spec: OpenAPIDocument) -> tuple[ResourceDefinition, ...]:
        """Each resource is built as a tool would be, then its URI is checked."""
        built = []
        self.section = "resources"
        try:
            for name, rc in self.curation.resources.items():
                found = spec.find(rc.operation)
                tool = self._tool(spec, name, rc)
                if tool is not None and isinstance(found, OperationRef):
                    resource = check_resource(self.doc, name, rc, found.method, tool,
                                              self.problems)
                    if resource is not None:
                        built.append(resource)
        finally:
            self.section = "tools"
        return tuple(built)

    def _expand(self, text: str, at: tuple[PathPart, ...]) -> str:
        value, missing = expand_env(text, self.environ)
        for name in missing:
            self.problems.append(self.doc.problem(
                at, f"environment variable {name!r} is not set",
                hint=f"export {name}=… or write ${{{name}:-default}}"))
        return value

    def _backend(self) -> BackendSettings | None:
        b = self.curation.backend
        before = len(self.problems)
        url = self._expand(b.base_url, ("backend", "base_url"))
        unset = len(self.problems) > before
        parts = urlsplit(url)
        if not unset and (parts.scheme not in ("http", "https") or not parts.hostname):
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
        for i, name in enumerate(b.forward_headers):
            if is_forbidden_header(name) or name.lower() in _CREDENTIAL_HEADERS or (
                    auth and name.lower() == auth.get("header", "").lower()):
                self.problems.append(self.doc.problem(
                    ("backend", "forward_headers", i), f"header {name!r} cannot be forwarded: "
                    "it carries credentials or routing",
                    hint="the backend credential comes from backend.auth; inbound "
                    "credentials are never passed on"))
        t, r, cb = b.timeouts, b.retries, b.circuit_breaker
        return BackendSettings(
            url.rstrip("/"), b.timeout, headers, auth, b.max_response_bytes,
            connect_timeout=t.connect, read_timeout=t.read, write_timeout=t.write,
            pool_timeout=t.pool, retry_attempts=r.attempts, retry_backoff=r.backoff,
            retry_max_backoff=r.max_backoff, breaker_failures=cb.failures,
            breaker_reset_after=cb.reset_after, max_concurrency=b.max_concurrency,
            max_json_depth=b.max_json_depth, max_json_items=b.max_json_items,
            error_excerpt=b.error_excerpt, forward_headers=tuple(b.forward_headers),
            redact=tuple(self.curation.redact))

    def _spec_path(self) -> tuple[Path, str]:
        path = self.config.parent / self.curation.spec
        display = os.path.relpath(path) if not Path(self.curation.spec).is_absolute() \
            else str(path)
        return path, display

    def _spec(self, path: Path, display: str) -> OpenAPIDocument | None:
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "not found"
            self.problems.append(self.doc.problem(
                ("spec",), f"spec file {self.curation.spec!r} {what}",
                hint="`spec` is relative to the curation file"))
            return None
        return load_spec(path, display)

    def _tool(self, spec: OpenAPIDocument, name: str, tool: ToolCuration
              ) -> ToolDefinition | None:
        at = (self.section, name, "operation")
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
        flat = flatten(self.doc, name, tool, op, inputs, self.problems, self.warnings,
                       section=self.section)
        bound = {a.source for a in flat.arguments if a.location == "path"}
        for var in path_variables(ref.path):
            if var not in bound:
                self.problems.append(self.doc.problem(
                    (self.section, name, "operation"), f"path parameter {{{var}}} of {ref.label} "
                    "is not declared in the spec or is hidden"))
        input_schema: dict[str, Any] = {"type": "object", "properties": flat.properties,
                                        "additionalProperties": False}
        if flat.required:
            input_schema["required"] = flat.required
        input_schema = inputs.bundle(input_schema)
        budget = max(MAX_TOOL_BYTES - json_size(input_schema) - 2048, MAX_TOOL_BYTES // 8)
        output, wrap, shaper = self._output(spec, name, tool, op.response, budget)
        self.problems += tool_problems(self.doc, name, tool, flat.properties,
                                       section=self.section)
        if len(self.problems) > before:
            return None
        response = op.response
        description, title, input_schema, output = self._clean_text(
            name, tool, _description(tool, op.summary, op.description, ref), tool.title,
            input_schema, output)
        return ToolDefinition(
            name=name,
            title=title,
            description=description,
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
            max_response_bytes=tool.max_response_bytes,
            audit_arguments=tuple(tool.audit_args),
            scopes=tuple(tool.scopes),
        )

    def _clean_text(self, name: str, tool: ToolCuration, description: str,
                    title: str | None, input_schema: dict[str, Any],
                    output: dict[str, Any] | None
                    ) -> tuple[str, str | None, dict[str, Any], dict[str, Any] | None]:
        """Strip invisible characters from everything the model reads, and warn about
        them and about instruction-like phrasing (see `facade.lint`)."""
        findings = TextFindings()
        own = tool.description is not None
        description = clean_text(description, "the description" if own else
                                 "the operation's description", findings)
        if title is not None:
            title = clean_text(title, "the title", findings)
        props = input_schema.get("properties", {})
        input_schema = {**input_schema, "properties": {
            arg: clean_schema(sub, f"argument {arg!r}", findings) for arg, sub in props.items()}}
        if "$defs" in input_schema:
            input_schema["$defs"] = clean_schema(input_schema["$defs"], "the argument schemas",
                                                 findings)
        if output is not None:
            output = clean_schema(output, "the output schema", findings)
        at = (self.section, name, "description" if own else "operation")
        for message in findings.messages():
            self.warnings.append(self.doc.problem(at, message, severity="warning"))
        return description, title, input_schema, output

    def _output(self, spec: OpenAPIDocument, name: str, tool: ToolCuration, response: Any,
                budget: int) -> tuple[dict[str, Any] | None, bool, Shaper]:
        """The output schema, pruned like the results and at most about `budget` bytes;
        whether results are wrapped; the shaper."""
        rc = tool.response
        shaper = Shaper(max_items=rc.max_items)
        for key in ("include", "redact"):
            for i, entry in enumerate(getattr(rc, key) or []):
                try:
                    parse_path(entry)
                except ValueError as exc:
                    self.problems.append(self.doc.problem(
                        (self.section, name, "response", key, i), str(exc),
                        hint="dotted names, with [] after an array: items[].id"))
                    return None, True, shaper
        shaper = Shaper.build(rc.include, [*self.curation.redact, *rc.redact], rc.max_items)
        media = (response.media_type or "").split(";")[0].lower() if response else ""
        if response is not None and media and not (media == "application/json"
                                                   or media.endswith("+json")):
            return None, False, shaper  # text results carry no structured content

        def attempt(limit: int | None, allowance: int | None) -> _Attempt:
            converter = SchemaConverter(spec.resolver, version=spec.version, mode="output",
                                        limit=limit, allowance=allowance,
                                        note=budget_note(MAX_TOOL_BYTES))
            raw = converter.bundle(converter.convert(response.schema, response.base)
                                   if response else {})
            schema, wrap = _wrapped(shaper.apply_schema(raw))
            return _Attempt(raw, schema, wrap, converter.collapsed)

        if rc.include:
            # What is kept may lie deep: convert it all, keep the included part, then fit.
            whole = attempt(None, None)
            self._check_response_paths(name, rc, whole.raw)
            fitted = fit_schema(whole.schema, budget)
            if fitted.depth is not None:
                self._collapsed(name, f"is {fitted.size:,} bytes", fitted.depth)
            return fitted.schema, whole.wrap, shaper
        chosen, depth = _fit_by_limit(attempt, budget)
        if depth is not None:
            self._collapsed(name, f"is over {budget // 1024} KB", depth)
        # Paths into what was collapsed cannot be checked here; they are still redacted.
        self._check_response_paths(name, rc, chosen.raw)
        return chosen.schema, chosen.wrap, shaper

    def _collapsed(self, name: str, size: str, depth: int) -> None:
        self.warnings.append(self.doc.problem(
            (self.section, name, "response"), f"the output schema {size}; what is nested "
            f"deeper than {depth} level(s) is collapsed to keep the tool under "
            f"{MAX_TOOL_BYTES // 1024} KB", severity="warning",
            hint="keep the fields agents need with response.include"))

    def _check_response_paths(self, name: str, rc: Any, schema: dict[str, Any]) -> None:
        self._check_paths(name, rc.include or [], "include", schema)
        self._check_paths(name, [e for e in rc.redact if "." in e or "[]" in e], "redact",
                          schema)

    def _check_paths(self, name: str, paths: list[str], key: str, schema: dict[str, Any]
                     ) -> None:
        defs = schema.get("$defs", {})
        for i, entry in enumerate(paths):
            if schema_has_path(schema, parse_path(entry), defs) is False:
                top = _top_level_names(schema, defs)
                self.problems.append(self.doc.problem(
                    (self.section, name, "response", key, i),
                    f"{entry!r} is not in the response schema",
                    hint=did_you_mean(entry, top) or (f"top-level fields: {', '.join(top)}"
                                                      if top else None)))


class _Attempt(NamedTuple):
    raw: dict[str, Any]  # as converted, before pruning
    schema: dict[str, Any]  # pruned and wrapped: what the tool lists
    wrap: bool
    collapsed: int  # subschemas collapsed at the limit


def _fit_by_limit(attempt: Callable[[int | None, int | None], _Attempt], budget: int
                  ) -> tuple[_Attempt, int | None]:
    """The whole schema when it fits in `budget`, else the one cut at the deepest nesting
    limit that fits, with that limit. Each try gives up once the converter's estimate
    passes the budget by a quarter (the estimate runs about a quarter under the real
    size, so such a try would not have fitted), so this costs a few budgets' worth of
    conversion, never a full expansion."""

    def fitting(limit: int | None) -> _Attempt | None:
        try:
            tried = attempt(limit, budget + budget // 4)
        except OverBudget:
            return None
        return tried if json_size(tried.schema) <= budget else None

    whole = fitting(None)
    if whole is not None:
        return whole, None
    best: tuple[_Attempt, int | None] | None = None
    for limit in range(1, 65):
        tried = fitting(limit)
        if tried is None:
            break
        best = (tried, limit if tried.collapsed else None)
        if not tried.collapsed:
            break  # nothing was left to collapse: the whole schema fits after all
    # Even the top level alone is over the budget: cut at 1, and the tool is over.
    return best or (attempt(1, None), 1)


def _wrapped(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """An object schema as it is; anything else under `result`, as results are wrapped."""
    root = schema.get("$ref")
    if isinstance(root, str) and root.startswith("#/$defs/"):
        # A recursive schema as the whole response: inline its definition at the root.
        schema = {**schema["$defs"][root.removeprefix("#/$defs/")], "$defs": schema["$defs"]}
    if schema.get("type") == "object" and "$ref" not in schema:
        return schema, False
    defs = schema.pop("$defs", None)
    wrapped: dict[str, Any] = {"type": "object", "properties": {"result": schema},
                               "required": ["result"], "x-fastmcp-wrap-result": True}
    if defs:
        wrapped["$defs"] = defs
    return wrapped, True


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
