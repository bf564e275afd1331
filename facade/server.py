"""Assemble the FastMCP server: one `CuratedTool` per definition, one backend client.

Per call: validate the arguments (precompiled validator) → encode the request → send →
shape the answer → check it against the output schema → return structured content.
Everything compiled (validators, schemas, shaping rules) is built once, here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema
import httpx
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.auth import AuthProvider
from fastmcp.server.dependencies import get_access_token, get_http_headers
from fastmcp.tools import Tool, ToolResult
from mcp_types import TextContent, ToolAnnotations
from pydantic import PrivateAttr

from facade import __version__
from facade.bodies import decode_json
from facade.encoding import ArgumentError, encode_request
from facade.errors import dotted_path
from facade.events import CallRecord, Observer, open_call
from facade.failures import UpstreamError
from facade.scrub import contains_secret, install_log_scrubber, scrub, scrub_data
from facade.tools import READ_ONLY_METHODS, Facade, ToolDefinition
from facade.upstream import MissingCredentialError, Upstream

if TYPE_CHECKING:
    import jsonschema

__all__ = ["CuratedTool", "Upstreams", "build_server", "build_upstreams"]

# The backend clients of a façade by API name (`ToolDefinition.api`); "" for single-API.
Upstreams = Mapping[str, Upstream]


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    # The schemas were built and checked at load (`facade check` runs check_schema on
    # them); checking again at every start would cost Stripe-sized tools a second.
    # Imported here: jsonschema takes ~30 ms to import, and is needed only once a fast
    # path does not accept (see `_SchemaCheck`).
    import jsonschema

    return jsonschema.Draft202012Validator(schema)


# Keywords whose meaning a draft-7 compiled validator shares with 2020-12: output schemas
# (shape only) use nothing else. Anything outside this set keeps the jsonschema path.
_FAST_KEYWORDS = frozenset({
    "type", "properties", "items", "anyOf", "allOf", "oneOf", "additionalProperties",
    "required", "$ref", "$defs", "deprecated", "readOnly", "writeOnly",
})
# Input schemas add validation keywords both read alike. `enum` and `const` only with
# strings and nulls: Python's `True == 1` would let a compiled check accept `true` for 1.
# (`multipleOf` is left out: the two round floats differently.)
_FAST_INPUT_KEYWORDS = _FAST_KEYWORDS | {
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minItems", "maxItems", "minProperties", "maxProperties",
    "enum", "const",
}
# Annotations: whatever their value holds (an example may be any JSON), nothing to check.
_ANNOTATIONS = frozenset({"description", "title", "examples", "default", "format"})


def _plain(schema: Any, keywords: frozenset[str] = _FAST_KEYWORDS) -> bool:
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


def _fast_check(schema: dict[str, Any], keywords: frozenset[str] = _FAST_KEYWORDS
                ) -> Callable[[Any], Any] | None:
    """A compiled validator (fastjsonschema, ~15x faster on large results) used as a fast
    path: when it accepts, jsonschema would too; when it rejects, jsonschema decides and
    words the error. None when the schema is outside what it shares with 2020-12."""
    if not _plain(schema, keywords):
        return None
    try:
        return fastjsonschema.compile(schema, use_default=False, use_formats=False,
                                      detailed_exceptions=False)
    except Exception:  # any schema it cannot compile keeps the jsonschema path
        return None


class _SchemaCheck:
    """One schema's checks, each built on first use, so that starting does not pay for
    tools nobody calls: the compiled fast path (`_fast_check`) and jsonschema, which
    decides and words the errors whenever the fast path does not accept."""

    def __init__(self, schema: dict[str, Any], keywords: frozenset[str]) -> None:
        self.schema = schema
        self._keywords = keywords
        self._fast: Callable[[Any], Any] | None | bool = False  # False: not compiled yet
        self._validator: jsonschema.Draft202012Validator | None = None

    def fast_accepts(self, value: Any) -> bool:
        if self._fast is False:
            self._fast = _fast_check(self.schema, self._keywords)
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


def _argument_errors(validator: jsonschema.Draft202012Validator, arguments: Any) -> list[str]:
    messages = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: list(e.path)):
        where = dotted_path(tuple(error.absolute_path))
        if error.validator == "additionalProperties" and not error.absolute_path:
            allowed = sorted((error.schema.get("properties") or {}))
            extra = sorted(set(arguments) - set(allowed)) if isinstance(arguments, dict) else []
            messages.append(f"unknown argument(s) {', '.join(map(repr, extra))}; the tool "
                            f"takes {', '.join(allowed) or 'no arguments'}")
        elif error.validator == "required":
            messages.append(error.message.replace("property", "argument"))
        else:
            messages.append(f"{where or 'arguments'}: {error.message}")
    return messages


def _principal() -> str | None:
    """Who is calling: the inbound access token's client id, when there is one."""
    token = get_access_token()
    return token.client_id if token is not None else None


def _forwarded(names: tuple[str, ...]) -> dict[str, str]:
    """The inbound HTTP headers the curation allows through (none over stdio)."""
    if not names:
        return {}
    inbound = get_http_headers(include={n.lower() for n in names})
    return {name: inbound[name.lower()] for name in names if name.lower() in inbound}


class CuratedTool(Tool):
    """A curated operation exposed as an MCP tool; `run()` proxies one backend call."""

    _definition: ToolDefinition = PrivateAttr()
    _upstream: Upstream | None = PrivateAttr(default=None)
    _observer: Observer = PrivateAttr(default_factory=Observer)
    _inputs: _SchemaCheck = PrivateAttr()
    _outputs: _SchemaCheck | None = PrivateAttr(default=None)

    @classmethod
    def from_definition(cls, definition: ToolDefinition, upstream: Upstream | None,
                        observer: Observer | None = None) -> CuratedTool:
        tool = cls(
            name=definition.name,
            title=definition.title,
            description=definition.description,
            parameters=definition.input_schema,
            output_schema=definition.output_schema,
            annotations=ToolAnnotations(**definition.annotations),
        )
        tool._definition = definition
        tool._upstream = upstream
        tool._observer = observer or Observer()
        tool._inputs = _SchemaCheck(definition.input_schema, _FAST_INPUT_KEYWORDS)
        if definition.output_schema is not None:
            tool._outputs = _SchemaCheck(definition.output_schema, _FAST_KEYWORDS)
        return tool

    def __repr__(self) -> str:
        d = self._definition
        return f"CuratedTool(name={d.name!r}, operation={d.binding.method} {d.binding.path})"

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        record = CallRecord(tool=self.name, principal=_principal())
        observer = self._observer
        with open_call(record):
            try:
                result = await self._call(arguments, record)
            except UpstreamError as exc:
                record.outcome = exc.outcome
                raise
            except ToolError:
                if record.outcome == "ok":
                    record.outcome = "error"
                raise
            except BaseException:
                record.outcome = "cancelled" if record.outcome == "ok" else record.outcome
                raise
            finally:
                observer.call_finished(record)
        return result

    async def _call(self, arguments: dict[str, Any], record: CallRecord) -> ToolResult:
        definition = self._definition
        if definition.binding.method not in READ_ONLY_METHODS and \
                definition.annotations.get("readOnlyHint"):
            # Load time refuses this; the check here makes the guarantee hold at call time too.
            record.outcome = "refused"
            raise ToolError(f"Tool {self.name} is read-only but bound to "
                            f"{definition.binding.method}; refusing to call it")
        problems = [] if self._inputs.fast_accepts(arguments) else _argument_errors(
            self._inputs.validator, arguments)
        if problems:
            record.outcome = "invalid_arguments"
            raise ToolError(f"Invalid arguments for {self.name}: " + "; ".join(problems))
        try:
            request = encode_request(definition.binding, arguments)
        except ArgumentError as exc:
            record.outcome = "invalid_arguments"
            raise ToolError(f"Invalid arguments for {self.name}: {exc}") from exc
        if self._upstream is None:
            raise ToolError(f"Tool {self.name} is not connected to a backend")
        record.arguments = {k: arguments[k] for k in definition.audit_arguments
                            if k in arguments} or None
        try:
            self._observer.call_started(record)
        except ToolError:
            record.outcome = "rejected"
            raise
        upstream = self._upstream
        response = await upstream.send(definition, request, _forwarded(
            upstream.backend.forward_headers))
        if response.media_type == "application/json" or response.media_type.endswith("+json"):
            backend = upstream.backend
            return self._structured(decode_json(definition, response.body,
                                                backend.max_json_depth, backend.max_json_items))
        if definition.output_schema is None and (response.media_type.startswith("text/")
                                                 or not response.body):
            return ToolResult(content=[TextContent(type="text", text=scrub(response.body.decode(
                "utf-8", errors="replace")))])
        kind = response.media_type or "no content type"
        raise ToolError(f"The backend answered {definition.binding.method} "
                        f"{definition.binding.path} with {kind}, which facade does not "
                        "pass on")

    def _structured(self, data: Any) -> ToolResult:
        definition = self._definition
        notes: list[str] = []
        shaped = definition.shaper.apply(data, notes)
        text = json.dumps(shaped, ensure_ascii=False)
        if contains_secret(text):  # a backend that echoes the façade's own credential
            shaped = scrub_data(shaped)
            text = json.dumps(shaped, ensure_ascii=False)
        if definition.output_schema is None:
            structured = None
        elif definition.wrap_result:
            structured = {"result": shaped}
        elif isinstance(shaped, dict):
            structured = shaped
        else:
            raise ToolError(f"The backend answered {definition.binding.method} "
                            f"{definition.binding.path} with a JSON "
                            f"{type(shaped).__name__} where the spec documents an object")
        outputs = self._outputs
        if outputs is not None and not outputs.fast_accepts(structured):
            from jsonschema.exceptions import best_match

            error = best_match(outputs.validator.iter_errors(structured))
            if error is not None:
                where = dotted_path(tuple(error.absolute_path)) or "the result"
                raise ToolError(f"The backend's answer to {definition.binding.method} "
                                f"{definition.binding.path} does not match its documented "
                                f"schema at {where}: {error.message}")
        content = [TextContent(type="text", text=text)]
        content += [TextContent(type="text", text=f"Note: {note}.") for note in notes]
        meta: dict[str, Any] | None = {"facade": {"truncated": notes}} if notes else None
        if definition.wrap_result:
            meta = {**(meta or {}), "fastmcp": {"wrap_result": True}}
        return ToolResult(content=content, structured_content=structured, meta=meta)


def build_upstreams(facade: Facade, *, environ: Mapping[str, str] | None = None,
                    transport: httpx.AsyncBaseTransport | None = None,
                    observer: Observer | None = None) -> dict[str, Upstream]:
    """One `Upstream` per API (own client, credentials, breaker and concurrency limit).

    Raises:
        MissingCredentialError: an env var named in a backend's `auth` is not set (no
            backend is called before all are built).
    """
    upstreams = {}
    for api, backend in (facade.backends or {"": facade.backend}).items():
        try:
            upstreams[api] = Upstream(backend, environ=environ, transport=transport,
                                      observer=observer)
        except MissingCredentialError as exc:
            if not api:
                raise
            raise MissingCredentialError(f"apis.{api}.{exc}") from None
    return upstreams


def build_server(facade: Facade, *, environ: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 observer: Observer | None = None, auth: AuthProvider | None = None,
                 upstream: Upstream | Upstreams | None = None, watch: Path | None = None
                 ) -> FastMCP[Any]:
    """A FastMCP server exposing exactly the curated tools of `facade`.

    `observer` receives call events (metrics, audit). The backend credentials are
    registered with `facade.scrub`, and log records are scrubbed of them from here on.
    `auth` checks inbound HTTP requests (`facade.inbound`). `upstream` replaces the backend
    clients built from `environ`, `transport` and `observer` (`facade serve` keeps a handle
    on them for readiness): one `Upstream`, or a mapping of API name to `Upstream`
    (`build_upstreams`). With `watch` (the curation file), the server re-reads the
    curation and its spec when they change and swaps in a valid new version
    (`facade.reload`).

    Raises:
        MissingCredentialError: an env var named in a backend's `auth` is not set.
    """
    observer = observer or Observer()
    upstreams: Upstreams
    if upstream is None:
        upstreams = build_upstreams(facade, environ=environ, transport=transport,
                                    observer=observer)
    elif isinstance(upstream, Upstream):
        upstreams = {api: upstream for api in (facade.backends or {"": facade.backend})}
    else:
        upstreams = upstream
    install_log_scrubber()

    reloader: Any = None

    @asynccontextmanager
    async def lifespan(server: FastMCP[Any]) -> AsyncIterator[dict[str, Any]]:
        try:
            if reloader is None:
                yield {}
            else:
                async with reloader.running():
                    yield {}
        finally:
            for each in upstreams.values():
                await each.aclose()

    server: FastMCP[Any] = FastMCP(
        name=facade.name,
        instructions=facade.instructions,
        version=__version__,
        lifespan=lifespan,
        mask_error_details=True,
        dereference_schemas=False,  # schemas are self-contained already, built at load
        on_duplicate="error",
        auth=auth,
    )
    add_components(server, facade, upstreams, observer)
    if watch is not None:
        from facade.reload import Reloader

        reloader = Reloader(server, watch, facade, upstreams, observer)
        server.facade_reloader = reloader  # type: ignore[attr-defined]
    return server


def add_components(server: FastMCP[Any], facade: Facade, upstream: Upstream | Upstreams,
                   observer: Observer) -> None:
    """Register the curated tools, resources and prompts of `facade` (no awaiting: a
    reload that removes the old ones and adds these is atomic for every request). Each
    tool is bound to the upstream of its API."""
    def upstream_for(definition: ToolDefinition) -> Upstream | None:
        if isinstance(upstream, Upstream):
            return upstream
        return upstream.get(definition.api)

    for definition in facade.tools:
        server.add_tool(CuratedTool.from_definition(definition, upstream_for(definition),
                                                    observer))
    if facade.resources or facade.prompts:
        from fastmcp.resources import ResourceTemplate

        from facade.server_extras import CuratedPrompt, resource_for

        for resource in facade.resources:
            tool = CuratedTool.from_definition(resource.tool, upstream_for(resource.tool),
                                               observer)
            component = resource_for(resource, tool)
            if isinstance(component, ResourceTemplate):
                server.add_template(component)
            else:
                server.add_resource(component)
        for prompt in facade.prompts:
            server.add_prompt(CuratedPrompt.from_definition(prompt))


def remove_components(server: FastMCP[Any], facade: Facade) -> None:
    provider = server.local_provider
    for definition in facade.tools:
        provider.remove_tool(definition.name)
    for resource in facade.resources:
        if resource.variables:
            provider.remove_template(resource.uri)
        else:
            provider.remove_resource(resource.uri)
    for prompt in facade.prompts:
        provider.remove_prompt(prompt.name)
