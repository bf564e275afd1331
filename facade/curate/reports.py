"""`facade check --format json|sarif`: its problems as one document, for CI.

Both formats are built from the same structured `Problem`s the text output prints, so a
new kind of problem comes through without work here. Each problem gets a **rule id**, the
kind of problem, stable across versions:

- the problem's own `code` when its origin sets one (`yaml/syntax`, `shape/unknown-key`,
  `spec/not-found`, `operation/unknown`, `lint/description`, `drift/breaking`, …);
- otherwise the curation key it is about, with names replaced by `*`:
  `curation/tools.*.params.*.value`, `curation/backend.base_url`. Lists leave no trace
  (`tools.*.response.include`). A problem in an overlay is `overlay/<key>`, in a spec
  `spec/invalid`.

`json` is facade's own document (`FORMAT`, version 1): every problem with its file, line,
column, severity, rule, key path, message and hint, then a summary. `sarif` is SARIF
2.1.0, one run, for code scanning: file URIs relative to the working directory
(`uriBaseId` `%SRCROOT%`), errors as level `error` and warnings as `warning`.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import BaseModel

from facade.errors import PathPart, Problem, dotted_path
from facade.loading.curation import Curation, MultiCuration, field_named
from facade.version import __version__

__all__ = ["FORMAT", "SARIF_SCHEMA", "CheckResult", "as_json", "as_sarif", "key_pattern",
           "rule_id"]

FORMAT, FORMAT_VERSION = "facade-check", 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/facade-mcp/"
SRCROOT = "%SRCROOT%"

# What each kind of problem is about, for SARIF's `rules`. Codes not listed here (new
# ones) are described by their family, the part before the `/`.
RULES = {
    "file/not-found": "The curation file does not exist.",
    "file/unreadable": "The curation file cannot be read.",
    "file/too-large": "The curation file is larger than facade reads.",
    "file/encoding": "The curation file is not UTF-8.",
    "yaml/syntax": "The curation is not valid YAML.",
    "yaml/empty": "The curation file is empty.",
    "yaml/duplicate-key": "A key appears twice in the same mapping.",
    "yaml/key": "A mapping key is not a plain scalar.",
    "yaml/too-large": "Aliases expand the curation past the size facade reads.",
    "shape/unknown-key": "A key the curation format does not have (often a typo).",
    "shape/missing-key": "A required key is missing.",
    "shape/invalid-name": "A tool, resource or API name that does not fit the naming rule.",
    "shape/no-tools": "No tool is chosen yet.",
    "shape/top-level": "The curation's top level is not a mapping.",
    "shape/mixed-apis": "A single-API key at the top level of a multi-API curation.",
    "shape/value-error": "A value, or a combination of keys, the curation format refuses.",
    "spec/not-found": "The spec file the curation names does not exist.",
    "spec/unreadable": "The spec file cannot be read.",
    "spec/too-large": "The spec file is larger than facade reads.",
    "spec/syntax": "The spec is not valid JSON or YAML.",
    "spec/ref": "A `$ref` in the spec cannot be resolved.",
    "spec/invalid": "The spec is not an OpenAPI document facade can use.",
    "spec/swagger2": "A Swagger 2.0 construct that cannot be converted to OpenAPI 3.",
    "operation/unknown": "The curated operation is not in the spec.",
    "operation/ambiguous": "The operationId names several operations.",
    "operation/not-read-only": "A read-only façade curates an operation that writes.",
    "text/invisible-characters": "Invisible characters in text that reaches the model.",
    "text/instruction-like": "Text that reaches the model reads like an instruction to it.",
    "lint/too-many-tools": "More tools than agents choose among reliably.",
    "lint/tool-name": "A tool name clients refuse, or that says the tool writes.",
    "lint/description": "A tool or argument description that is missing or too long.",
    "lint/mentions-unseen-parameter": "A description names a parameter the agent cannot "
    "see under that name.",
    "drift/breaking": "The spec changed since `facade lock` in a way that breaks the tool.",
    "drift/changed": "The spec changed since `facade lock`; nothing the tool uses broke.",
    "drift/lock-unreadable": "The lock file cannot be read.",
    "budget/max-tokens": "tools/list is estimated over `--max-tokens`.",
    "internal/schema": "facade built an invalid JSON Schema (a facade bug).",
}
_FAMILIES = {
    "file": "The curation file cannot be read.",
    "yaml": "The curation is not valid YAML.",
    "shape": "A value of the wrong type or form in the curation.",
    "spec": "A problem with the spec the curation names.",
    "operation": "A problem with a curated operation.",
    "text": "Text that reaches the model needs review.",
    "lint": "The curation works, but agents will use it worse.",
    "drift": "The spec changed since `facade lock`.",
    "overlay": "A problem in an overlay the curation applies.",
}


def rule_id(problem: Problem, config_file: str) -> str:
    """The kind of `problem` (see the module docstring). `config_file` is the curation, as
    the problem's `file` names it."""
    if problem.code:
        return problem.code
    if problem.file and problem.file != config_file:
        if all(isinstance(p, str) and p[:1] in ("#", "/") for p in problem.path):
            return "spec/invalid"  # positioned by a JSON pointer into a spec
        return "overlay/" + dotted_path([p for p in problem.path if isinstance(p, str)])
    pattern = key_pattern(problem.path)
    return f"curation/{pattern}" if pattern else "curation"


def key_pattern(path: Sequence[PathPart]) -> str:
    """The curation key `path` is about, as the reference documents it: names the curator
    chose become `*`, list positions are dropped; the walk stops at a key the curation
    format does not have. `("tools", "get_item", "params", "id", "value")` →
    `tools.*.params.*.value`."""
    tp: Any = MultiCuration if path[:1] == ("apis",) else Curation
    out: list[str] = []
    for part in path:
        options = _members(tp)
        if isinstance(part, int):
            items = [typing.get_args(o)[0] for o in options if typing.get_origin(o) is list]
            if not items:
                break
            tp = items[0]
            continue
        maps = [typing.get_args(o)[1] for o in options if typing.get_origin(o) is dict]
        if maps:
            out.append("*")
            tp = maps[0]
            continue
        models = (o for o in options if isinstance(o, type) and issubclass(o, BaseModel))
        field = next((f for f in (field_named(m, str(part)) for m in models)
                      if f is not None), None)
        if field is None:
            break
        out.append(str(part))
        tp = field.annotation
    return ".".join(out)


def _members(tp: Any) -> list[Any]:
    """The types `tp` may be: the members of a union, without Annotated and None."""
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(tp) if a is not type(None) for m in _members(a)]
    return [tp]


@dataclass(frozen=True)
class CheckResult:
    """What `facade check` found: every problem (each with its file), and the outcome."""

    config: str  # the curation, as problems name it
    problems: Sequence[Problem]
    exit_code: int
    strict: bool = False
    tools: Sequence[str] | None = None  # the tools, when the curation loaded

    @property
    def errors(self) -> int:
        return sum(p.severity == "error" for p in self.problems)

    @property
    def warnings(self) -> int:
        return len(self.problems) - self.errors


def as_json(result: CheckResult) -> dict[str, Any]:
    """facade's own document: see the README's "Results for CI"."""
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "facade": __version__,
        "config": result.config,
        "problems": [{
            "file": p.file or result.config, "line": p.line,
            "col": p.column if p.line is not None else None,
            "severity": p.severity, "rule": rule_id(p, result.config),
            "path": dotted_path(p.path), "message": p.message, "hint": p.hint,
        } for p in result.problems],
        "summary": {"errors": result.errors, "warnings": result.warnings,
                    "strict": result.strict, "tools": None if result.tools is None
                    else list(result.tools), "exit_code": result.exit_code},
    }


def as_sarif(result: CheckResult, root: Path | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run; file URIs relative to `root` (the working directory)."""
    root = (root or Path.cwd()).resolve()
    rules: dict[str, int] = {}
    levels: dict[str, str] = {}
    results = []
    for p in result.problems:
        rule = rule_id(p, result.config)
        index = rules.setdefault(rule, len(rules))
        levels.setdefault(rule, p.severity)
        region = {"startLine": p.line, "startColumn": p.column or 1} if p.line else None
        results.append({
            "ruleId": rule, "ruleIndex": index,
            "level": "error" if p.severity == "error" else "warning",
            "message": {"text": p.text()},
            "locations": [{"physicalLocation": {
                "artifactLocation": _artifact(p.file or result.config, root),
                **({"region": region} if region else {})}}],
        })
    return {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "facade", "version": __version__, "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [{"id": rule, "shortDescription": {"text": _describe(rule)},
                           "defaultConfiguration": {
                               "level": "error" if levels[rule] == "error" else "warning"}}
                          for rule in rules]}},
            "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri() + "/"}},
            "invocations": [{"executionSuccessful": True, "exitCode": result.exit_code}],
            "results": results,
        }],
    }


def _artifact(file: str, root: Path) -> dict[str, str]:
    """A file as SARIF names it: relative to `root` when it is under it."""
    path = Path(file)
    full = path if path.is_absolute() else Path(os.path.abspath(root / path))
    try:
        relative = full.relative_to(root)
    except ValueError:
        return {"uri": full.as_uri()}
    return {"uri": quote(relative.as_posix()), "uriBaseId": SRCROOT}


def _describe(rule: str) -> str:
    if rule in RULES:
        return RULES[rule]
    family, _, rest = rule.partition("/")
    if family == "curation":
        return f"A problem with `{rest}` in the curation." if rest else \
            "A problem with the curation."
    if family == "shape":
        return f"A value of the wrong type or form in the curation ({rest})."
    return _FAMILIES.get(family, "A problem facade found.")
