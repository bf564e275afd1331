"""Serve time: the curated tools, resources and prompts as FastMCP components.

`add_components` registers a façade's components on a server and `remove_components`
takes them off again (what a hot reload swaps). A resource read is a tool call in
disguise: the URI's variables become the arguments of a hidden `CuratedTool`, which
validates, calls the backend and shapes the answer exactly as the tool would; the shaped
result is returned as the resource's JSON text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import PromptError, ResourceError, ToolError
from fastmcp.prompts import Prompt
from fastmcp.prompts.base import PromptArgument
from fastmcp.resources import Resource, ResourceTemplate
from fastmcp.resources.base import ResourceResult
from pydantic import AnyUrl, PrivateAttr

from facade.call.events import Observer
from facade.call.tool import CuratedTool
from facade.call.upstream import Upstream
from facade.tools import Facade, PromptDefinition, ResourceDefinition

__all__ = ["CuratedPrompt", "CuratedResource", "CuratedResourceTemplate", "Upstreams",
           "add_components", "remove_components", "resource_for"]

# The backend clients of a façade by API name (`ToolDefinition.api`); "" for single-API.
Upstreams = Mapping[str, Upstream]
# Failures a curation expects (bad URI variables, backend errors, missing prompt arguments):
# fastmcp logs them at this level, not as ERROR lines with a traceback.
EXPECTED = logging.DEBUG


def _coerce(schema: dict[str, Any], name: str, text: str) -> Any:
    """A URI variable (always text) as the type its argument takes."""
    kind = (schema.get("properties", {}).get(name) or {}).get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        raise ResourceError(f"{name}: {text!r} is not a {kind}",
                            log_level=EXPECTED) from None
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
        raise ResourceError(str(exc), log_level=EXPECTED) from exc
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
            raise PromptError(f"prompt {self.name} needs argument(s): {', '.join(missing)}",
                              log_level=EXPECTED)
        return self._definition.render({k: str(v) for k, v in arguments.items()})


def add_components(server: FastMCP[Any], facade: Facade, upstreams: Upstreams,
                   observer: Observer) -> None:
    """Register the curated tools, resources and prompts of `facade` (no awaiting: a
    reload that removes the old ones and adds these is atomic for every request). Each
    tool is bound to the upstream of its API."""
    for definition in facade.tools:
        server.add_tool(CuratedTool.from_definition(definition, upstreams.get(definition.api),
                                                    observer))
    for resource in facade.resources:
        tool = CuratedTool.from_definition(resource.tool, upstreams.get(resource.tool.api),
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
