"""Load time, once a curation loads: what its curator should look at before shipping it.

Nothing here is an error: a façade that trips these rules works, but an agent will use it
worse. `facade check` prints them as warnings (`--strict` fails on them). The rules and
their thresholds:

- **More than `MAX_TOOLS` (15) tools.** Every tool is sent to the model with every request,
  and the more there are, the more often it picks the wrong one.
- **A missing description** (neither the curation nor the spec says what the tool does, so
  the model sees only `GET /path`), or **one over `MAX_DESCRIPTION` (1024) characters**,
  for a tool or an argument. 1024 is the longest function description some model APIs
  accept (OpenAI's, for one); longer ones are refused or cut by those clients.
- **A description that names a parameter the agent cannot see**: a hidden or fixed one,
  by its spec name, or a renamed one by its old name. The model would try to pass it. An
  identifier-like name (`itemId`, `X-Tenant`) counts anywhere; a plain word (`limit`)
  only quoted or followed by "parameter" and the like, so "filter by tag" does not.
- **A tool name that is not snake_case** (`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`: no doubled,
  leading or trailing underscores) **or longer than 64 characters.** The curation already
  refuses names outside `^[a-z][a-z0-9_]{0,63}$`; this checks the names that reach the
  façade by any route (an artifact, say) against the stricter rule.
- **A GET or HEAD operation named like a write** (`delete_…`, `create_…`, `set_…`,
  `logout…`: see `MUTATING_VERBS`), by its tool name or its operationId. A read-only
  façade trusts the method; an operation like that may change state anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from facade.errors import PathPart, Problem
from facade.loading.curation import Curation, MultiCuration, ToolCuration
from facade.loading.multi import api_sections
from facade.loading.yamlsource import YAMLDocument
from facade.tools import READ_ONLY_METHODS, Facade, ToolDefinition, tool_name_for

__all__ = ["MAX_DESCRIPTION", "MAX_NAME", "MAX_TOOLS", "MUTATING_VERBS", "lint_curation",
           "lint_multi"]

MAX_TOOLS = 15
MAX_DESCRIPTION = 1024
MAX_NAME = 64
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
MUTATING_VERBS = frozenset({
    "add", "append", "approve", "archive", "assign", "attach", "cancel", "clear", "close",
    "create", "delete", "destroy", "detach", "disable", "enable", "execute", "insert",
    "invite", "lock", "login", "logout", "merge", "modify", "patch", "post", "publish",
    "purge", "put", "reject", "remove", "rename", "replace", "reset", "restore", "revoke",
    "send", "set", "start", "stop", "submit", "sync", "trigger", "unlock", "unpublish",
    "update", "upload", "upsert", "write",
})


def lint_curation(facade: Facade, curation: Curation, doc: YAMLDocument) -> list[Problem]:
    """Warnings about a loaded façade, positioned in its curation file."""
    warnings = _too_many_tools(facade, doc, ("tools",))
    for definition in facade.tools:
        tool = curation.tools.get(definition.name)
        for code, (path, message, hint) in _tool_findings(definition, tool):
            warnings.append(doc.problem(path, message, hint=hint, severity="warning",
                                        key=path[-1:] == (definition.name,), code=code))
    return warnings


def _too_many_tools(facade: Facade, doc: YAMLDocument, at: tuple[PathPart, ...]
                    ) -> list[Problem]:
    if len(facade.tools) <= MAX_TOOLS:
        return []
    return [doc.problem(
        at, f"{len(facade.tools)} tools: past {MAX_TOOLS}, agents pick the wrong tool more "
        "often, and every tool is sent with every request", key=True, severity="warning",
        hint="keep the few tools a task needs; `facade tools --budget` shows what each one "
        "costs", code="lint/too-many-tools")]


Finding = tuple[tuple[PathPart, ...], str, str | None]


def _tool_findings(definition: ToolDefinition, tool: ToolCuration | None
                   ) -> Iterator[tuple[str, Finding]]:
    """Each finding with its problem code, one per rule family."""
    for code, findings in (("lint/tool-name", _name_findings(definition)),
                           ("lint/description", _description_findings(definition, tool)),
                           ("lint/mentions-unseen-parameter",
                            _mention_findings(definition, tool))):
        for finding in findings:
            yield code, finding


def _name_findings(definition: ToolDefinition) -> Iterator[Finding]:
    name = definition.name
    at: tuple[PathPart, ...] = ("tools", name)
    if len(name) > MAX_NAME:
        yield at, f"the tool name is {len(name)} characters; clients refuse names over " \
            f"{MAX_NAME}", None
    if not SNAKE_CASE.match(name):
        yield at, f"tool name {name!r} is not snake_case", \
            f"e.g. {tool_name_for(name, 'GET', '/')!r}"
    if definition.binding.method not in READ_ONLY_METHODS:
        return
    label = f"{definition.binding.method} {definition.binding.path}"
    verb = name.split("_", 1)[0]
    if verb in MUTATING_VERBS:
        yield at, f"tool {name!r} calls {label} but its name says it writes ({verb!r})", \
            "rename the tool after what it reads"
        return
    operation_id = definition.operation if definition.operation != label else None
    if operation_id:
        # GitHub-style ids namespace the verb: `repos/delete-file` → `delete`.
        verb = tool_name_for(operation_id.rsplit("/", 1)[-1], "GET", "/").split("_", 1)[0]
        if verb in MUTATING_VERBS:
            yield ("tools", name, "operation"), f"{label} is a {definition.binding.method}, " \
                f"but its operationId {operation_id!r} says it writes ({verb!r})", \
                "check what the backend does: a read-only façade trusts the method"


def _description_findings(definition: ToolDefinition, tool: ToolCuration | None
                          ) -> Iterator[Finding]:
    own = tool is not None and tool.description is not None
    at: tuple[PathPart, ...] = ("tools", definition.name, "description" if own else
                                "operation")
    label = f"{definition.binding.method} {definition.binding.path}"
    if definition.description.strip() in ("", label):
        yield at, "the tool has no description: the model sees only " \
            f"{label!r}", "add a `description` that says what it returns and when to use it"
    elif len(definition.description) > MAX_DESCRIPTION:
        yield at, f"the description is {len(definition.description):,} characters, over " \
            f"{MAX_DESCRIPTION:,}: some clients refuse or cut longer ones", \
            "write a shorter `description` in the curation" if not own else None
    for arg, text in _argument_descriptions(definition):
        if len(text) > MAX_DESCRIPTION:
            yield _argument_at(definition, tool, arg), \
                f"the description of argument {arg!r} is {len(text):,} characters, over " \
                f"{MAX_DESCRIPTION:,}", "give it a shorter `description` in the curation"


def _mention_findings(definition: ToolDefinition, tool: ToolCuration | None
                      ) -> Iterator[Finding]:
    """Descriptions that name a parameter the agent does not have under that name."""
    unseen: dict[str, str] = {}  # spec name → why the agent does not know it
    for arg in definition.binding.arguments:
        if arg.fixed:
            unseen[arg.source] = "a fixed parameter the agent cannot see or set"
        elif arg.name != arg.source:
            unseen[arg.source] = f"which the agent knows as {arg.name!r}"
    if tool is not None:
        for key, param in tool.params.items():
            if param.hidden:
                unseen[key] = "a hidden parameter the agent cannot see or set"
    if not unseen:
        return
    own = tool is not None and tool.description is not None
    texts: list[tuple[tuple[PathPart, ...], str, str]] = [
        (("tools", definition.name, "description" if own else "operation"), "the description",
         definition.description)]
    texts += [(_argument_at(definition, tool, arg), f"the description of argument {arg!r}",
               text) for arg, text in _argument_descriptions(definition)]
    for at, what, text in texts:
        for source, why in unseen.items():
            if _mentions(text, source):
                yield at, f"{what} mentions {source!r}, {why}", "reword it"


def _mentions(text: str, name: str) -> bool:
    """Whether `text` names the parameter `name`. An identifier-like name (`itemId`,
    `X-Tenant`, `page_size`) counts as a whole word anywhere; a plain word (`limit`,
    `tag`) only when quoted or code-formatted, or followed by "parameter" and the like, so
    that "filter by tag" does not count."""
    word = re.escape(name)
    if not re.fullmatch(r"[a-z]+", name):
        return re.search(rf"(?<![\w-]){word}(?![\w-])", text) is not None
    quoted = rf"[`'\"]{word}[`'\"]"
    named = rf"(?<![\w-]){word}\s+(?:parameter|param|argument|arg|field|option)s?\b"
    return re.search(f"{quoted}|{named}", text, re.IGNORECASE) is not None


def _argument_descriptions(definition: ToolDefinition) -> Iterator[tuple[str, str]]:
    props: dict[str, Any] = definition.input_schema.get("properties") or {}
    for arg, schema in props.items():
        if isinstance(schema, dict) and isinstance(schema.get("description"), str):
            yield arg, schema["description"]


def _argument_at(definition: ToolDefinition, tool: ToolCuration | None, arg: str
                 ) -> tuple[PathPart, ...]:
    """Where to point for an argument's description: its curation, or the operation."""
    source = next((a.source for a in definition.binding.arguments if a.name == arg), arg)
    if tool is not None and source in tool.params:
        key = "description" if tool.params[source].description is not None else None
        return ("tools", definition.name, "params", source, *([key] if key else []))
    return ("tools", definition.name, "operation")


def lint_multi(facade: Facade, multi: MultiCuration, doc: YAMLDocument) -> list[Problem]:
    """The curator's lint, API by API, positioned under `apis.`."""
    # Each API is linted alone below: the tools of all of them are counted here.
    warnings = _too_many_tools(facade, doc, ("apis",))
    for api, ac, scoped, curation in api_sections(doc, multi):
        prefix = f"{ac.namespace}_" if ac.namespace else ""
        own = tuple(replace(t, name=t.name.removeprefix(prefix)) for t in facade.tools
                    if t.api == api)
        found = lint_curation(replace(facade, tools=own), curation, scoped)
        warnings += [w for w in found if w.path != ("apis", api, "tools")]  # counted above
    return warnings
