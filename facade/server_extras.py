"""Call time: curated resources and prompts on the FastMCP server.

A resource read is a tool call in disguise: the URI's variables become the arguments of
a hidden `CuratedTool`, which validates, calls the backend and shapes the answer exactly
as the tool would; the shaped result is returned as the resource's JSON text.
"""

from __future__ import annotations

import json
from typing import Any

from fastmcp.exceptions import PromptError, ResourceError, ToolError
from fastmcp.prompts import Prompt
from fastmcp.prompts.base import PromptArgument
from fastmcp.resources import Resource, ResourceTemplate
from fastmcp.resources.base import ResourceResult
from pydantic import AnyUrl, PrivateAttr

from facade.extras import render_prompt
from facade.server import CuratedTool
from facade.tools import PromptDefinition, ResourceDefinition

__all__ = ["CuratedPrompt", "CuratedResource", "CuratedResourceTemplate", "resource_for"]


def _coerce(schema: dict[str, Any], name: str, text: str) -> Any:
    """A URI variable (always text) as the type its argument takes."""
    kind = (schema.get("properties", {}).get(name) or {}).get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        raise ResourceError(f"{name}: {text!r} is not a {kind}") from None
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


async def _read(tool: CuratedTool, definition: ResourceDefinition,
                params: dict[str, Any]) -> str:
    schema = definition.tool.input_schema
    arguments = {k: _coerce(schema, k, str(v)) for k, v in params.items()}
    try:
        result = await tool.run(arguments)
    except ToolError as exc:
        raise ResourceError(str(exc)) from exc
    structured = result.structured_content
    if structured is None:
        return "".join(getattr(block, "text", "") for block in result.content)
    data = structured["result"] if definition.tool.wrap_result else structured
    return json.dumps(data, ensure_ascii=False)


class CuratedResourceTemplate(ResourceTemplate):
    _tool: CuratedTool = PrivateAttr()
    _definition: ResourceDefinition = PrivateAttr()

    async def _read(self, uri: str, params: dict[str, Any]) -> ResourceResult:
        return self.convert_result(await _read(self._tool, self._definition, params))


class CuratedResource(Resource):
    _tool: CuratedTool = PrivateAttr()
    _definition: ResourceDefinition = PrivateAttr()

    async def read(self) -> str:
        return await _read(self._tool, self._definition, {})


def resource_for(definition: ResourceDefinition, tool: CuratedTool
                 ) -> CuratedResource | CuratedResourceTemplate:
    d = definition.tool
    common: dict[str, Any] = {"name": definition.name, "title": d.title,
                              "description": d.description, "mime_type": definition.mime_type}
    component: CuratedResource | CuratedResourceTemplate
    if definition.variables:
        props = d.input_schema.get("properties", {})
        component = CuratedResourceTemplate(
            uri_template=definition.uri, parameters={
                "type": "object", "required": list(definition.variables),
                "properties": {v: props[v] for v in definition.variables}}, **common)
    else:
        component = CuratedResource(uri=AnyUrl(definition.uri), **common)
    component._tool, component._definition = tool, definition
    return component


class CuratedPrompt(Prompt):
    _definition: PromptDefinition = PrivateAttr()

    @classmethod
    def from_definition(cls, definition: PromptDefinition) -> CuratedPrompt:
        prompt = cls(name=definition.name, title=definition.title,
                     description=definition.description, arguments=[
                         PromptArgument(name=n, description=d, required=r)
                         for n, d, r in definition.arguments])
        prompt._definition = definition
        return prompt

    async def render(self, arguments: dict[str, Any] | None = None) -> str:
        arguments = arguments or {}
        missing = [n for n, _, required in self._definition.arguments
                   if required and not arguments.get(n)]
        if missing:
            raise PromptError(f"prompt {self.name} needs argument(s): {', '.join(missing)}")
        return render_prompt(self._definition.template,
                             {k: str(v) for k, v in arguments.items()})
