"""What the tool list costs a model: bytes and estimated tokens, curated and uncurated.

Every MCP client sends the whole `tools/list` to the model with every request, so its size
is paid again and again. `facade tools --budget` shows it per tool and in total, beside
what the same spec would cost with every operation exposed as a tool, built by the same
loader (the "uncurated" figure), and `facade check --max-tokens N` keeps it under a cap.

Tokens are *estimated*, never counted: `ceil(bytes / 4)`, the usual rule of thumb for
English text (OpenAI's "one token is about four characters"). Bytes are UTF-8 bytes of the
compact JSON, so non-ASCII text, which tokenizes less densely, weighs more. JSON schemas are
punctuation-heavy and often tokenize at closer to 3 bytes per token, so read the figure as
an order of magnitude and keep a margin under a model's real limit. No tokenizer is
downloaded or run: the estimate is the same offline, in CI, for every model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facade.curate.outline import outline
from facade.errors import LoadError
from facade.loading.curation import Curation, parse_any_curation
from facade.loading.fitting import json_size
from facade.loading.spec import load_spec
from facade.loading.yamlsource import YAMLDocument, read_yaml
from facade.tools import ToolDefinition

__all__ = ["BYTES_PER_TOKEN", "Budget", "ToolCost", "Uncurated", "estimate_tokens",
           "listing", "listing_budget", "spec_budget", "uncurated_budget"]

BYTES_PER_TOKEN = 4


def estimate_tokens(size: int) -> int:
    """Estimated tokens for `size` bytes of JSON: `ceil(size / 4)` (see the module doc)."""
    return -(-size // BYTES_PER_TOKEN)


@dataclass(frozen=True)
class ToolCost:
    """One tool's share of `tools/list`."""

    name: str
    operation: str  # "METHOD /path"
    bytes: int

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.bytes)


@dataclass(frozen=True)
class Budget:
    """The size of a whole `tools/list` result (`{"tools": [...]}`, compact JSON)."""

    tools: tuple[ToolCost, ...]
    bytes: int

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.bytes)

    def largest(self, n: int = 3) -> list[ToolCost]:
        return sorted(self.tools, key=lambda t: -t.bytes)[:n]


@dataclass(frozen=True)
class Uncurated:
    """What exposing every operation of the spec would cost, and what that took to find out."""

    budget: Budget
    operations: int  # in the spec
    skipped: int  # operations the loader refuses to build as they are (e.g. name clashes)
    seconds: float


def listing(definitions: Sequence[ToolDefinition]) -> list[dict[str, Any]]:
    """The tools exactly as an MCP client receives them from `tools/list`."""
    from facade.call.tool import CuratedTool

    # from_definition compiles no validator: those are built at a tool's first call.
    return [CuratedTool.from_definition(d, None).to_mcp_tool().model_dump(
        by_alias=True, exclude_none=True, mode="json") for d in definitions]


def listing_budget(definitions: Sequence[ToolDefinition],
                   tools: list[dict[str, Any]] | None = None) -> Budget:
    """The budget of `definitions`; pass their `listing` when it is already built."""
    tools = listing(definitions) if tools is None else tools
    costs = tuple(ToolCost(t["name"], f"{d.binding.method} {d.binding.path}", json_size(t))
                  for t, d in zip(tools, definitions))
    return Budget(costs, json_size({"tools": tools}))


def uncurated_budget(config: str | Path) -> Uncurated:
    """What the spec of the curation at `config` would cost with every operation a tool.

    Raises:
        LoadError: the curation's shape or the spec cannot be read.
    """
    config = Path(config)
    curation = parse_any_curation(read_yaml(config))
    if isinstance(curation, Curation):
        return spec_budget(config.parent / curation.spec, config)
    # Several APIs: every operation of every spec, as if each API were exposed alone.
    parts = [spec_budget(config.parent / ac.spec, config) for ac in curation.apis.values()]
    overhead = json_size({"tools": []})
    return Uncurated(
        Budget(tuple(c for u in parts for c in u.budget.tools),
               sum(u.budget.bytes - overhead for u in parts) + overhead),
        sum(u.operations for u in parts), sum(u.skipped for u in parts),
        sum(u.seconds for u in parts))


def spec_budget(spec_path: Path, config: Path) -> Uncurated:
    """Every operation of the spec at `spec_path` built as a tool by the loader, named as
    `facade init` names it, with `read_only: false` and nothing curated."""
    from facade.loading.single import SingleLoader  # the loader's own tool builder, not a copy

    started = time.perf_counter()
    spec = load_spec(spec_path, os.path.relpath(spec_path))
    names = {op.name: op.ref.label for op in outline(spec, details=False)}
    if not names:
        empty = Budget((), json_size({"tools": []}))
        return Uncurated(empty, 0, 0, time.perf_counter() - started)
    # A synthetic curation, from plain data: it has no positions to report.
    data = {"version": 1, "spec": str(spec_path), "read_only": False,
            "backend": {"base_url": "http://127.0.0.1"},
            "tools": {name: {"operation": label} for name, label in names.items()}}
    everything = Curation.model_validate(data)
    loader = SingleLoader(YAMLDocument(file=str(config), data=data), everything, config, {})
    built: list[ToolDefinition] = []
    for name, tool in everything.tools.items():
        before = len(loader.problems)
        try:
            definition = loader.build_tool(spec, name, tool)
        except LoadError:
            definition = None
        if definition is not None and len(loader.problems) == before:
            built.append(definition)
    budget = listing_budget(built)
    return Uncurated(budget, len(names), len(names) - len(built),
                     time.perf_counter() - started)
