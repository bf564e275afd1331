"""Call time: a curated operation as an MCP tool, and the steps of one call.

`CuratedTool.run()`: validate the arguments (`facade.call.checks`) → encode the request
(`facade.call.encoding`) → send it (`facade.call.upstream`) → decode and shape the answer
→ check it against the documented schema (`facade.call.answers`: deviations are reported,
and fail the call only under `response.validate: strict`) → return structured content.
Everything it uses was compiled at load time and lives on the frozen `ToolDefinition`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_access_token, get_http_headers
from fastmcp.tools import Tool, ToolResult
from mcp_types import TextContent, ToolAnnotations
from pydantic import PrivateAttr

from facade.call.answers import AnswerCheck, log_once, not_an_object
from facade.call.bodies import decode_json
from facade.call.checks import FAST_INPUT_KEYWORDS, SchemaCheck, argument_errors, json_size
from facade.call.encoding import ArgumentError, encode_request
from facade.call.events import CallRecord, Observer, open_call
from facade.call.failures import UpstreamError
from facade.call.identity import meets_claims
from facade.call.scrub import contains_secret, scrub, scrub_data
from facade.call.tracing import call_span
from facade.call.upstream import Upstream
from facade.deviations import Deviation
from facade.tools import READ_ONLY_METHODS, ToolDefinition

__all__ = ["CuratedTool"]


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


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a call needs, read once per call (a pydantic private attribute costs a
    `__getattr__` each time it is read)."""

    definition: ToolDefinition
    upstream: Upstream | None
    observer: Observer
    inputs: SchemaCheck
    answers: AnswerCheck | None


class CuratedTool(Tool):
    """A curated operation exposed as an MCP tool; `run()` proxies one backend call."""

    _plan: _Plan = PrivateAttr()

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
        answers = None if definition.documented_schema is None else \
            AnswerCheck(definition.documented_schema)
        tool._plan = _Plan(definition, upstream, observer or Observer(),
                           SchemaCheck(definition.input_schema, FAST_INPUT_KEYWORDS), answers)
        return tool

    @property
    def upstream(self) -> Upstream | None:
        """The backend client this tool calls (None: not connected, e.g. `facade check`)."""
        return self._plan.upstream

    def __repr__(self) -> str:
        d = self._plan.definition
        return f"CuratedTool(name={d.name!r}, operation={d.binding.method} {d.binding.path})"

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        plan = self._plan
        record = CallRecord(tool=self.name, principal=_principal())
        with open_call(record), call_span(record):
            try:
                result = await self._call(plan, arguments, record)
            except ToolError as exc:
                if isinstance(exc, UpstreamError):
                    record.outcome = exc.outcome
                elif record.outcome == "ok":
                    record.outcome = "error"
                # Expected: the audit line records it, so fastmcp logs it at debug only
                # (not as an ERROR); anything else still reaches its ERROR line.
                exc.log_level = logging.DEBUG
                raise
            except Exception:
                record.outcome = "error" if record.outcome == "ok" else record.outcome
                raise
            except BaseException:
                record.outcome = "cancelled" if record.outcome == "ok" else record.outcome
                raise
            finally:
                plan.observer.call_finished(record)
        return result

    async def _call(self, plan: _Plan, arguments: dict[str, Any], record: CallRecord
                    ) -> ToolResult:
        definition = plan.definition
        name = self.name
        if definition.binding.method not in READ_ONLY_METHODS and \
                definition.annotations.get("readOnlyHint"):
            # Load time refuses this; the check here makes the guarantee hold at call time too.
            record.outcome = "refused"
            raise ToolError(f"Tool {name} is read-only but bound to "
                            f"{definition.binding.method}; refusing to call it")
        if definition.claims and not meets_claims(definition.claims, get_access_token()):
            # `ToolClaims` hides and refuses it first over HTTP; this holds for resources too.
            record.outcome = "refused"
            raise ToolError(f"Tool {name} is not available to this caller: its token "
                            "does not meet the tool's claim conditions")
        try:  # first: a refused call counts toward the rate limit, valid or not
            await plan.observer.admit(record)
            plan.observer.call_started(record)
        except ToolError:
            record.outcome = "rejected"
            raise
        cap = definition.max_argument_bytes
        size = json_size(arguments, cap)
        if size > cap:  # before the schema checks, which would copy the values into errors
            record.outcome = "invalid_arguments"
            raise ToolError(f"Invalid arguments for {name}: they take more than "
                            f"{cap:,} bytes as JSON, the most this tool accepts")
        problems = [] if plan.inputs.fast_accepts(arguments) else argument_errors(
            plan.inputs.validator, arguments)
        if problems:
            record.outcome = "invalid_arguments"
            raise ToolError(f"Invalid arguments for {name}: " + "; ".join(problems))
        try:
            request = encode_request(definition.binding, arguments)
        except ArgumentError as exc:
            record.outcome = "invalid_arguments"
            raise ToolError(f"Invalid arguments for {name}: {exc}") from exc
        upstream = plan.upstream
        if upstream is None:
            raise ToolError(f"Tool {name} is not connected to a backend")
        record.arguments = {k: arguments[k] for k in definition.audit_arguments
                            if k in arguments} or None
        identity = await upstream.identity.headers_for(get_access_token()) \
            if upstream.identity is not None else None
        response = await upstream.send(definition, request, _forwarded(
            upstream.backend.forward_headers), identity)
        if response.media_type == "application/json" or response.media_type.endswith("+json"):
            if definition.output_schema is not None and not response.body.strip():
                raise ToolError(f"The backend answered {definition.binding.agent_label} "
                                "with an empty body where the spec documents a JSON result")
            backend = upstream.backend
            return self._structured(decode_json(definition, response.body,
                                                backend.max_json_depth, backend.max_json_items),
                                    record)
        if definition.output_schema is None and (response.media_type.startswith("text/")
                                                 or not response.body):
            return ToolResult(content=[TextContent(type="text", text=scrub(response.body.decode(
                "utf-8", errors="replace")))])
        kind = response.media_type or "no content type"
        raise ToolError(f"The backend answered {definition.binding.agent_label} with {kind}, "
                        "which facade does not pass on")

    def _structured(self, data: Any, record: CallRecord | None = None) -> ToolResult:
        plan = self._plan
        definition = plan.definition
        notes: list[str] = []
        shaped = definition.shaper.apply(data, notes)
        text = json.dumps(shaped, ensure_ascii=False, separators=(",", ":"))
        if contains_secret(text):  # a backend that echoes the façade's own credential
            shaped = scrub_data(shaped)
            text = json.dumps(shaped, ensure_ascii=False, separators=(",", ":"))
        structured: dict[str, Any] | None = None
        if definition.output_schema is not None:
            found = plan.answers.deviations(shaped) if plan.answers is not None else []
            if definition.wrap_result:
                structured = {"result": shaped}
            elif isinstance(shaped, dict):
                structured = shaped
            else:  # tolerant: the data still arrives, under `result`
                if not any(d.path == "" and d.kind in ("null", "type") for d in found):
                    found = [not_an_object(shaped), *found]
                structured = {"result": shaped}
            if found:
                self._deviated(found, record)
        content = [TextContent(type="text", text=text)]
        content += [TextContent(type="text", text=f"Note: {note}.") for note in notes]
        meta: dict[str, Any] | None = {"facade": {"truncated": notes}} if notes else None
        if definition.wrap_result:
            meta = {**(meta or {}), "fastmcp": {"wrap_result": True}}
        return ToolResult(content=content, structured_content=structured, meta=meta)

    def _deviated(self, found: list[Deviation], record: CallRecord | None) -> None:
        """Report an answer's deviations; under `validate: strict`, fail the call."""
        plan = self._plan
        definition = plan.definition
        log_once(definition, found)
        if record is not None:
            record.deviations = len(found)
        plan.observer.response_deviations(definition.name, found)
        if definition.validate == "strict":
            raise ToolError(f"The backend's answer to {definition.binding.agent_label} does "
                            f"not match its documented schema at {found[0].describe()}")
