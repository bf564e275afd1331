"""Load time for one API: its curation and spec → a `Facade`, or every problem at once.

`SingleLoader` checks the backend and `server:` sections, resolves each curated operation,
flattens its parameters (`facade.loading.flatten`), builds its output schema
(`facade.loading.outputs`) and cleans the text a model reads (`facade.loading.lint`). Problems are
collected, never raised one by one. Multi-API curations run one `SingleLoader` per API
(`facade.loading.multi`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from facade.errors import CurationError, Problem, SpecError
from facade.loading.curation import Curation, ToolCuration, section_of
from facade.loading.environ import EnvExpander, expand_env
from facade.loading.extras import build_prompts, check_resource
from facade.loading.fitting import json_size
from facade.loading.flatten import flatten, is_forbidden_header, path_variables
from facade.loading.identity import auth_names, caller_problems, identity_headers, token_exchange
from facade.loading.lint import TextFindings, clean_schema, clean_text, oversized
from facade.loading.outputs import OutputSchemas
from facade.loading.overlays import read_overlays, relative_hint
from facade.loading.schemas import MAX_TOOL_BYTES, SchemaConverter
from facade.loading.server_section import per_caller, serve_settings, tool_problems
from facade.loading.spec import OpenAPIDocument, OperationRef, load_spec, locate_spec
from facade.loading.yamlsource import YAMLDocument
from facade.tools import (
    READ_ONLY_METHODS,
    BackendSettings,
    Facade,
    HTTPBinding,
    ResourceDefinition,
    ToolDefinition,
    annotations_for,
)

__all__ = ["Compiled", "SingleLoader"]

# Inbound headers that carry the caller's credentials: never forwarded to the backend.
_CREDENTIAL_HEADERS = frozenset({"x-api-key", "api-key", "x-auth-token", "x-access-token",
                                 "x-csrf-token", "set-cookie", "mcp-session-id"})


@dataclass(frozen=True)
class Compiled:
    """What load time derives from the spec: the part of a `Facade` an artifact stores."""

    name: str  # the server name: the curation's, else the spec's title
    tools: tuple[ToolDefinition, ...]
    warnings: tuple[Problem, ...]  # found while building the tools
    sources: tuple[Path, ...]  # every spec file read, the root document first, then overlays
    resources: tuple[ResourceDefinition, ...] = ()
    overlays: tuple[Path, ...] = ()  # the overlay files among `sources`


class SingleLoader:
    """Loads a single-API curation: its backend, `server:` section and tools."""


    def __init__(self, doc: YAMLDocument, curation: Curation, config: Path,
                 environ: dict[str, str], *, inbound_auth: bool | None = None) -> None:
        self.doc, self.curation, self.config, self.environ = doc, curation, config, environ
        # Whether callers are verified (`server.auth`); a multi-API curation's is at the top.
        self.inbound_auth = curation.server.auth is not None if inbound_auth is None \
            else inbound_auth
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.compiled: Compiled | None = None
        self.overlays: list[Path] = []  # the overlay files applied to the spec
        self.expand = EnvExpander(doc, environ, self.problems)
        self.outputs = OutputSchemas(doc, curation.redact, self.problems, self.warnings)

    def run(self, compiled: Compiled | None = None) -> Facade:
        """The façade; from `compiled` tools (an artifact's) when given, else from the spec.
        The backend and `server:` settings are derived here either way: they depend on the
        environment, which an artifact never stores."""
        backend = self._backend()
        c = self.curation
        self.problems += caller_problems(
            self.doc, ("backend",), c.backend.auth, c.backend.identity_headers,
            [*c.tools.items(), *c.resources.items()], self.inbound_auth)
        serving = serve_settings(self.curation.server, self.expand, self.problems, self.doc,
                                 per_caller([*c.tools.items(), *c.resources.items()]))
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
            sources=compiled.sources,
        )

    def compile(self, path: Path, display: str) -> Compiled | None:
        """Build the tools from the spec. The parsed spec is dropped when this returns."""
        spec = self._spec(path, display)
        if spec is None:
            return None
        before = len(self.warnings)
        tools = []
        for name, tool in self.curation.tools.items():
            built = self.build_tool(spec, name, tool)
            if built is not None:
                tools.append(built)
        resources = self._resources(spec)
        self.warnings += spec.conversion_warnings()  # Swagger 2.0 constructs 3.0 lacks
        warnings = tuple(self.warnings[before:])
        del self.warnings[before:]
        title = (spec.data.get("info") or {}).get("title")
        named = self.curation.server.name or (title if isinstance(title, str) else None)
        overlays = tuple(self.overlays)
        return Compiled(named or "facade", tuple(tools), warnings,
                        (*spec.resolver.files, *overlays), resources=resources,
                        overlays=overlays)

    def _resources(self, spec: OpenAPIDocument) -> tuple[ResourceDefinition, ...]:
        """Each resource is built as a tool would be, then its URI is checked."""
        built = []
        for name, rc in self.curation.resources.items():
            ref = self._operation(spec, name, rc)
            tool = self._tool(spec, name, rc, ref) if ref is not None else None
            if tool is not None and ref is not None:
                resource = check_resource(self.doc, name, rc, ref.method, tool, self.problems)
                if resource is not None:
                    built.append(resource)
        return tuple(built)

    def _backend(self) -> BackendSettings | None:
        b = self.curation.backend
        before = len(self.problems)
        url = self.expand(b.base_url, ("backend", "base_url"))
        unset = len(self.problems) > before
        parts = urlsplit(url)
        if not unset and (parts.scheme not in ("http", "https") or not parts.hostname):
            self.problems.append(self.doc.problem(
                ("backend", "base_url"), f"{url!r} is not an http(s) URL with a host"))
        if parts.username or parts.password:
            self.problems.append(self.doc.problem(
                ("backend", "base_url"), "credentials in the URL are not allowed",
                hint="use backend.auth with an env var name"))
        if parts.query or parts.fragment:
            # `?api_key=…` is the usual way a credential ends up here; the value is not echoed.
            self.problems.append(self.doc.problem(
                ("backend", "base_url"), "a query string or fragment in the URL is not "
                "allowed: it can carry credentials, and facade builds each request's query "
                "from the operation",
                hint="for an API key use backend.auth with api_key_env and header: facade "
                "sends keys in a header, never in the query; a fixed query parameter goes in "
                "tools.<name>.params.<p>.value"))
        headers = {}
        for key, value in b.headers.items():
            headers[key], missing = expand_env(value, self.environ)
            for name in missing:
                self.problems.append(self.doc.problem(
                    ("backend", "headers", key), f"environment variable {name!r} is not set"))
        auth = auth_names(b.auth, self.config)
        exchange = b.auth.token_exchange if b.auth else None
        exchanged = token_exchange(exchange, self.expand, self.config,
                                   ("backend", "auth", "token_exchange"), self.doc,
                                   self.problems) if exchange else None
        identity = identity_headers(b.identity_headers, ("backend", "identity_headers"),
                                    self.doc, self.problems)
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
            redact=tuple(self.curation.redact), token_exchange=exchanged,
            identity_headers=identity)

    def _spec_path(self) -> tuple[Path, str]:
        return locate_spec(self.config, self.curation.spec)

    def document(self) -> OpenAPIDocument | None:
        """The spec with the curation's overlays applied; None after reporting problems."""
        return self._spec(*self._spec_path())

    def _spec(self, path: Path, display: str) -> OpenAPIDocument | None:
        overlays, problems = read_overlays(self.doc, self.curation.overlays, self.config)
        self.problems += problems
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "not found"
            self.problems.append(self.doc.problem(
                ("spec",), f"spec file {self.curation.spec!r} {what}",
                hint=relative_hint("spec", self.curation.spec, display),
                code="spec/not-found"))
            return None
        if problems:
            return None
        try:
            spec = load_spec(path, display, overlays)
        except CurationError as exc:  # overlays that cannot be applied
            self.problems += exc.problems
            return None
        self.overlays = [o.path for o in overlays]
        return spec

    def build_tool(self, spec: OpenAPIDocument, name: str, tool: ToolCuration
                   ) -> ToolDefinition | None:
        """One curated tool, or None after reporting its problems."""
        ref = self._operation(spec, name, tool)
        return self._tool(spec, name, tool, ref) if ref is not None else None

    def _operation(self, spec: OpenAPIDocument, name: str, tool: ToolCuration
                   ) -> OperationRef | None:
        """The curated operation, or None after reporting why it cannot be used."""
        at = (section_of(tool), name, "operation")
        found = spec.find(tool.operation)
        if isinstance(found, list):
            labels = ", ".join(r.label for r in found)
            self.problems.append(self.doc.problem(
                at, f"operationId {tool.operation!r} is used by {len(found)} operations "
                f"({labels})", hint="name the operation as 'METHOD /path'",
                code="operation/ambiguous"))
            return None
        if found is None:
            self.problems.append(self.doc.problem(
                at, f"unknown operation {tool.operation!r} in {spec.display}",
                hint=_unknown_hint(spec, tool.operation, self.curation.read_only),
                code="operation/unknown"))
            return None
        if self.curation.read_only and found.method not in READ_ONLY_METHODS:
            self.problems.append(self.doc.problem(
                at, f"{found.label} is not read-only: a read-only façade serves only GET "
                "and HEAD", hint="remove this tool, or set `read_only: false` at the top",
                code="operation/not-read-only"))
            return None
        return found

    def _tool(self, spec: OpenAPIDocument, name: str, tool: ToolCuration, ref: OperationRef
              ) -> ToolDefinition | None:
        try:
            return self._build(spec, name, tool, ref)
        except SpecError as exc:
            for p in exc.problems:
                self.problems.append(self.doc.problem(
                    (section_of(tool), name, "operation"),
                    f"{exc.file}: {p.path[0] if p.path else ''} {p.message}".replace(
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
                    (section_of(tool), name, "operation"),
                    f"path parameter {{{var}}} of {ref.label} is not declared in the spec or "
                    "is hidden"))
        input_schema: dict[str, Any] = {"type": "object", "properties": flat.properties,
                                        "additionalProperties": False}
        if flat.required:
            input_schema["required"] = flat.required
        input_schema = inputs.bundle(input_schema)
        budget = max(MAX_TOOL_BYTES - json_size(input_schema) - 2048, MAX_TOOL_BYTES // 8)
        outputs = self.outputs.build(spec, name, tool, op.response, budget)
        self.problems += tool_problems(self.doc, name, tool, flat.properties)
        response = op.response
        binding = HTTPBinding(
            method=ref.method, path=ref.path, arguments=tuple(flat.arguments),
            body_media_type=op.body.media_type if op.body else None,
            response_media_type=response.media_type if response else None,
        )
        described = _description(tool, op.summary, op.description, binding.agent_label)
        self._cap_description(name, tool, described)
        if len(self.problems) > before:
            return None
        description, title, input_schema, output = self._clean_text(
            name, tool, described, tool.title, input_schema, outputs.published)
        return ToolDefinition(
            name=name,
            title=title,
            description=description,
            input_schema=input_schema,
            output_schema=output,
            wrap_result=outputs.wrap,
            annotations=annotations_for(ref.method, self.curation.read_only),
            binding=binding,
            shaper=outputs.shaper,
            operation=ref.operation_id or ref.label,
            max_response_bytes=tool.max_response_bytes,
            max_argument_bytes=tool.max_argument_bytes,
            audit_arguments=tuple(tool.audit_args),
            scopes=tuple(tool.scopes),
            claims=tuple((claim, tuple(values)) for claim, values in tool.claims.items()),
            documented_schema=outputs.documented,
            validate=tool.response.validate_ or self.curation.response.validate_,
        )

    def _cap_description(self, name: str, tool: ToolCuration, description: str) -> None:
        too_long = oversized(description)
        if too_long is None:
            return
        if tool.description is not None:
            self.problems.append(self.doc.problem(
                (section_of(tool), name, "description"), f"the description {too_long}",
                hint="every description is sent with every tools/list: keep what the model "
                "needs to choose the tool"))
        else:
            self.problems.append(self.doc.problem(
                (section_of(tool), name, "operation"), "the description the spec gives "
                f"(its summary and description) {too_long}",
                hint="write a shorter `description` for the tool"))

    def _clean_text(self, name: str, tool: ToolCuration, description: str,
                    title: str | None, input_schema: dict[str, Any],
                    output: dict[str, Any] | None
                    ) -> tuple[str, str | None, dict[str, Any], dict[str, Any] | None]:
        """Strip invisible characters from everything the model reads, and warn about
        them and about instruction-like phrasing (see `facade.loading.lint`)."""
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
        at = (section_of(tool), name, "description" if own else "operation")
        for code, message in findings.messages():
            self.warnings.append(self.doc.problem(at, message, severity="warning", code=code))
        return description, title, input_schema, output


def _unknown_hint(spec: OpenAPIDocument, key: str, read_only: bool) -> str:
    if not spec.by_label:
        # Webhook-only documents and schema fixtures: no list of operations would help.
        return "the document defines no operations under `paths`"
    fallback = "use an operationId or 'METHOD /path'; `facade init` lists them"
    if not read_only:
        return spec.suggest(key) or fallback
    reads = spec.suggest(key, READ_ONLY_METHODS)
    if reads is not None:
        return reads
    # A read-only curation is offered writes only when no read is close.
    writes = spec.suggest(key)
    if writes is None:
        return fallback
    return writes.replace("did you mean", "the closest operations are not read-only:"
                          ).removesuffix("?") + "; a read-only façade serves only GET and HEAD"


def _description(tool: ToolCuration, summary: str | None, description: str | None,
                 fallback: str) -> str:
    if tool.description:
        return tool.description.strip()
    parts = [p.strip() for p in (summary, description) if isinstance(p, str) and p.strip()]
    if len(parts) == 2 and parts[1].startswith(parts[0]):
        parts = parts[1:]
    return "\n\n".join(parts) or fallback
