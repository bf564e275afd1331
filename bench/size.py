"""tools/list size: facade's curated list vs FastMCP with the same operations and with the
whole spec. Tokens are estimated as bytes / 4 (no tokenizer is involved)."""

from __future__ import annotations

import json
import subprocess

from lib import (
    CURATIONS,
    OPENAPI,
    PY,
    Options,
    child_env,
    mb,
    operation_labels,
    spec_of,
    table,
)

TIMEOUT = 600  # FastMCP needs ~15 s and ~2 GB for the whole Stripe spec


def _curated(spec: str) -> tuple[int, int]:
    from facade.cli import tool_listing
    from facade.loading.loader import load

    listing = tool_listing(load(CURATIONS / f"{spec}.yaml", environ=child_env()))
    return len(listing), len(json.dumps({"tools": listing}, separators=(",", ":")).encode())


def _fastmcp(spec: str, *args: str) -> dict[str, int | float] | str:
    try:
        run = subprocess.run([PY, str(OPENAPI), str(spec_of(CURATIONS / f"{spec}.yaml")),
                              "--measure", *args], capture_output=True, text=True,
                             timeout=TIMEOUT, env=child_env())
    except subprocess.TimeoutExpired:
        return f"timed out after {TIMEOUT} s"
    if run.returncode != 0:
        return (run.stderr.strip().splitlines() or ["failed"])[-1][:100]
    result: dict[str, int | float] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def _cell(result: dict[str, int | float] | str) -> str:
    if isinstance(result, str):
        return "fails"
    return f"{int(result['bytes']):,} B ({int(result['tools'])} tools)"


def _tokens(size: float) -> str:
    return f"~{size / 4:,.0f}"


def run(opts: Options) -> None:
    rows, notes = [], []
    for spec in opts.specs:
        tools, size = _curated(spec)
        same = _fastmcp(spec, "--ops", ",".join(operation_labels(CURATIONS / f"{spec}.yaml")))
        whole: dict[str, int | float] | str = "skipped in --quick"
        if not (opts.quick and spec == "stripe"):
            whole = _fastmcp(spec, "--all")
        for name, result in (("same ops", same), ("whole spec", whole)):
            if isinstance(result, str):
                notes.append(f"{spec}, FastMCP {name}: {result}")
        rows.append([spec, f"{size:,} B ({tools} tools)", _tokens(size), _cell(same),
                     _tokens(same["bytes"]) if isinstance(same, dict) else "-", _cell(whole),
                     _tokens(whole["bytes"]) if isinstance(whole, dict) else "-",
                     (f"{whole['seconds']:.1f} s, peak {mb(whole['peak_rss_kb'])}"
                      if isinstance(whole, dict) else "-")])
    table("6. tools/list size (tokens ≈ bytes / 4, an estimate)",
          ["spec", "facade curated", "tokens", "FastMCP same ops", "tokens",
           "FastMCP whole spec", "tokens", "FastMCP whole: build, peak RSS"], rows, notes)
