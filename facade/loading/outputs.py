"""Load time: a tool's output schema and response shaping, from the curated response.

The output schema is pruned the way results are (`response.include`, redaction) and kept
within the tool's byte budget: a schema too large is cut at the deepest nesting level that
fits (`_fit_by_limit`), never expanded in full first. From the pruned schema come the two
forms a tool keeps (`facade.loading.tolerance`): the documented one, that answers are
checked against, and the published one, that `tools/list` shows. Results that are not
objects are wrapped as `{"result": …}`, and the published schema says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from facade.errors import Problem
from facade.loading.curation import ToolCuration, section_of
from facade.loading.fitting import budget_note, fit_schema, json_size
from facade.loading.response_paths import check_conflicts, check_response_paths
from facade.loading.schemas import MAX_TOOL_BYTES, OverBudget, SchemaConverter
from facade.loading.spec import OpenAPIDocument, Response
from facade.loading.tolerance import (
    documented_schema,
    is_object,
    published_schema,
    wrapped_schema,
)
from facade.loading.yamlsource import YAMLDocument
from facade.shaping import Shaper, parse_path

__all__ = ["OutputSchemas", "Outputs"]


class Outputs(NamedTuple):
    """What a tool's response curation compiles to."""

    published: dict[str, Any] | None  # listed in tools/list; None: text results
    documented: dict[str, Any] | None  # the body's documented schema, checked per call
    wrap: bool  # results are listed and returned as {"result": …}
    shaper: Shaper


class OutputSchemas:
    """Builds the output schema and shaper of each tool, reporting into shared lists."""

    def __init__(self, doc: YAMLDocument, redact: list[str], problems: list[Problem],
                 warnings: list[Problem]) -> None:
        self.doc, self.redact = doc, redact
        self.problems, self.warnings = problems, warnings

    def build(self, spec: OpenAPIDocument, name: str, tool: ToolCuration,
              response: Response | None, budget: int) -> Outputs:
        """The output schemas, pruned like the results, the published one at most about
        `budget` bytes; whether results are wrapped; the shaper."""
        rc = tool.response
        shaper = Shaper(max_items=rc.max_items)
        for key in ("include", "redact"):
            for i, entry in enumerate(getattr(rc, key) or []):
                try:
                    parse_path(entry)
                except ValueError as exc:
                    self.problems.append(self.doc.problem(
                        (section_of(tool), name, "response", key, i), str(exc),
                        hint="dotted names, with [] after an array: items[].id"))
                    return Outputs(None, None, True, shaper)
        check_conflicts(self.doc, name, tool, self.redact, self.problems)
        shaper = Shaper.build(rc.include, [*self.redact, *rc.redact], rc.max_items)
        media = (response.media_type or "").split(";")[0].lower() if response else ""
        if response is not None and media and not (media == "application/json"
                                                   or media.endswith("+json")):
            return Outputs(None, None, False, shaper)  # text results: no structured content

        def attempt(limit: int | None, allowance: int | None) -> _Attempt:
            converter = SchemaConverter(spec.resolver, version=spec.version, mode="output",
                                        limit=limit, allowance=allowance,
                                        note=budget_note(MAX_TOOL_BYTES))
            raw = converter.bundle(converter.convert(response.schema, response.base)
                                   if response else {})
            shaped = shaper.apply_schema(raw)
            schema, wrap = _wrapped(shaped)
            return _Attempt(raw, shaped, schema, wrap, converter.collapsed)

        if rc.include:
            # What is kept may lie deep: convert it all, keep the included part, then fit.
            whole = attempt(None, None)
            check_response_paths(self.doc, name, tool, whole.raw, self.problems)
            fitted = fit_schema(whole.schema, budget)
            if fitted.depth is not None:
                self._collapsed(tool, name, f"is {fitted.size:,} bytes", fitted.depth)
            return Outputs(fitted.schema, documented_schema(whole.shaped), whole.wrap, shaper)
        chosen, depth = _fit_by_limit(attempt, budget)
        if depth is not None:
            self._collapsed(tool, name, f"is over {budget // 1024} KB", depth)
        # Paths into what was collapsed cannot be checked here; they are still redacted.
        check_response_paths(self.doc, name, tool, chosen.raw, self.problems)
        return Outputs(chosen.schema, documented_schema(chosen.shaped), chosen.wrap, shaper)

    def _collapsed(self, tool: ToolCuration, name: str, size: str, depth: int) -> None:
        self.warnings.append(self.doc.problem(
            (section_of(tool), name, "response"), f"the output schema {size}; what is nested "
            f"deeper than {depth} level(s) is collapsed to keep the tool under "
            f"{MAX_TOOL_BYTES // 1024} KB", severity="warning",
            hint="keep the fields agents need with response.include"))


class _Attempt(NamedTuple):
    raw: dict[str, Any]  # as converted, before pruning
    shaped: dict[str, Any]  # pruned like the results
    schema: dict[str, Any]  # published (and wrapped): what the tool lists
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
    """The published schema: an object's as it is, anything else under `result`, as
    results are wrapped."""
    root = schema.get("$ref")
    if isinstance(root, str) and root.startswith("#/$defs/"):
        # A recursive schema as the whole response: inline its definition at the root.
        schema = {**schema["$defs"][root.removeprefix("#/$defs/")], "$defs": schema["$defs"]}
    if is_object(schema, schema.get("$defs") or {}):
        return published_schema(schema), False
    return wrapped_schema(schema), True
