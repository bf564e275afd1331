"""Load time: the curation's resources and prompts, checked like tools.

A resource is a GET operation built exactly like a tool (same flattening, shaping and
checks), plus a URI whose `{variables}` name the operation's arguments: every required
argument must be one, and nothing else may be. A prompt is a template whose `{name}`
placeholders must be its declared arguments and whose `tools` must be curated tools.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from typing import Any

from facade.errors import Problem, did_you_mean
from facade.loading.curation import PromptCuration, ResourceCuration
from facade.loading.yamlsource import YAMLDocument
from facade.tools import READ_ONLY_METHODS, PromptDefinition, ResourceDefinition, ToolDefinition

__all__ = ["build_prompts", "check_resource", "uri_variables"]

_VARIABLE = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def uri_variables(uri: str) -> list[str]:
    return _VARIABLE.findall(uri)


def check_resource(doc: YAMLDocument, name: str, rc: ResourceCuration, method: str,
                   tool: ToolDefinition, problems: list[Problem]) -> ResourceDefinition | None:
    """The resource for a built `tool`, or None with problems added."""
    before = len(problems)
    at = ("resources", name)
    if method not in READ_ONLY_METHODS:
        problems.append(doc.problem((*at, "operation"), f"{method} operations cannot be "
                                    "resources: reading a resource must not change anything"))
    props = tool.input_schema.get("properties", {})
    variables = uri_variables(rc.uri)
    for var in variables:
        if not _NAME.match(var):
            problems.append(doc.problem(
                (*at, "uri"), f"{{{var}}} is not a plain variable",
                hint="write {name}: URI template operators (+ # . / ; ? &) are not supported"))
        elif var not in props:
            problems.append(doc.problem(
                (*at, "uri"), f"{{{var}}} is not an argument of {rc.operation}",
                hint=did_you_mean(var, list(props)) or
                f"its arguments are: {', '.join(props) or 'none'}"))
    if len(set(variables)) != len(variables):
        problems.append(doc.problem((*at, "uri"), "a variable appears twice in the URI"))
    missing = [arg for arg in tool.input_schema.get("required", []) if arg not in variables]
    if missing:
        problems.append(doc.problem(
            (*at, "uri"), f"required argument(s) {', '.join(missing)} are not in the URI",
            hint="add them as {name}, or fix them with params: {p: {value: ...}}"))
    if len(problems) > before:
        return None
    return ResourceDefinition(name=name, uri=rc.uri, variables=tuple(variables),
                              mime_type=rc.mime_type, tool=tool)


def build_prompts(doc: YAMLDocument, curated: Mapping[str, PromptCuration], tools: list[str],
                  problems: list[Problem], warnings: list[Problem]
                  ) -> tuple[PromptDefinition, ...]:
    """The curated prompts; each may name any of `tools` (the final tool names)."""
    prompts = []
    for name, pc in curated.items():
        at = ("prompts", name)
        before = len(problems)
        declared = [a.name for a in pc.arguments]
        used = _placeholders(pc.template, lambda why: problems.append(
            doc.problem((*at, "template"), why,
                        hint="write {{ and }} for literal braces")))
        for placeholder in used:
            if placeholder not in declared:
                problems.append(doc.problem(
                    (*at, "template"), f"placeholder {{{placeholder}}} is not a declared "
                    "argument", hint=did_you_mean(placeholder, declared) or
                    "declare it under arguments"))
        for i, arg in enumerate(pc.arguments):
            if arg.name not in used:
                warnings.append(doc.problem(
                    (*at, "arguments", i), f"argument {arg.name!r} is not used in the "
                    "template", severity="warning"))
        if len(set(declared)) != len(declared):
            problems.append(doc.problem((*at, "arguments"), "an argument is declared twice"))
        for i, tool in enumerate(pc.tools):
            if tool not in tools:
                problems.append(doc.problem(
                    (*at, "tools", i), f"{tool!r} is not a curated tool",
                    hint=did_you_mean(tool, tools) or f"curated tools: {', '.join(tools)}"))
        if len(problems) == before:
            prompts.append(PromptDefinition(
                name=name, description=pc.description, title=pc.title,
                arguments=tuple((a.name, a.description, a.required) for a in pc.arguments),
                template=pc.template, tools=tuple(pc.tools)))
    return tuple(prompts)


def _placeholders(template: str, fail: Callable[[str], Any]) -> list[str]:
    """The `{name}` fields of a str.format template, or [] after reporting why not."""
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template)
                  if f is not None]
    except ValueError as exc:
        fail(f"the template is not valid: {exc}")
        return []
    bad = [f for f in fields if not _NAME.match(f)]
    if bad:
        fail(f"placeholder {{{bad[0]}}} is not a plain name")
        return []
    return list(dict.fromkeys(fields))
