"""Start-up sections: cold start, warm start (from a `facade build` artifact), memory."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from lib import (
    CURATIONS,
    EXAMPLE,
    FLOOR,
    OPENAPI,
    PY,
    TINY_SPEC,
    Options,
    Start,
    child_env,
    facade_cmd,
    mb,
    median,
    ms,
    operation_labels,
    spec_of,
    stdio_start,
    table,
)


@dataclass
class Runs:
    """Every start measured in this run, by (spec, variant), so sections share them."""

    starts: dict[tuple[str, str], list[Start]] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    ratios: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def measure(self, spec: str, variant: str, cmd: list[str], env: dict[str, str],
                opts: Options) -> Start | None:
        key = (spec, variant)
        if key in self.errors:
            return None
        try:
            start = stdio_start(cmd, env, opts.workdir, f"{spec}-{variant}")
        except RuntimeError as exc:
            self.errors[key] = str(exc)
            return None
        self.starts.setdefault(key, []).append(start)
        return start

    def pair(self, spec: str, variant: str, start: Start | None, base: Start | None) -> None:
        """Record one start against the floor start measured just before it."""
        if start is not None and base is not None:
            self.ratios.setdefault((spec, variant), []).append(start.seconds / base.seconds)

    def ratio(self, spec: str, variant: str) -> str:
        """The median of the paired ratios: drift of the machine during the run cancels,
        where a ratio of two medians taken minutes apart would carry it."""
        values = self.ratios.get((spec, variant))
        return f"{median(values):.2f}×" if values else "-"

    def seconds(self, spec: str, variant: str) -> float:
        return median([s.seconds for s in self.starts.get((spec, variant), [])])

    def cell(self, spec: str, variant: str) -> str:
        runs = self.starts.get((spec, variant), [])
        if not runs:
            return "fails" if (spec, variant) in self.errors else "-"
        best = min(s.seconds for s in runs)
        return f"{ms(self.seconds(spec, variant))} ({ms(best)})" if len(runs) > 1 \
            else ms(self.seconds(spec, variant))

    def last(self, spec: str, variant: str) -> Start | None:
        runs = self.starts.get((spec, variant))
        return runs[-1] if runs else None


RUNS = Runs()


def curation_of(spec: str) -> Path:
    return EXAMPLE if spec == "example" else CURATIONS / f"{spec}.yaml"


def variants(spec: str, opts: Options, *, warm: bool = False) -> dict[str, tuple[list[str],
                                                                                  dict[str, str]]]:
    """The servers compared for one spec: command and environment of each."""
    curation = curation_of(spec)
    document = spec_of(curation)
    cold = child_env(FACADE_ARTIFACT="off")
    found = {
        "floor": ([PY, str(FLOOR), str(document)], child_env()),
        "facade": (facade_cmd("serve", "--config", str(curation)), cold),
        "fastmcp": ([PY, str(OPENAPI), str(document), "--ops",
                     ",".join(operation_labels(curation))], child_env()),
    }
    if warm:
        found["facade-warm"] = (facade_cmd("serve", "--config", str(curation)),
                                child_env(FACADE_ARTIFACT=str(build_artifact(spec, opts))))
    return found


def build_artifact(spec: str, opts: Options) -> Path:
    target = opts.workdir / f"{spec}.artifact.json"
    subprocess.run(facade_cmd("build", "--config", str(curation_of(spec)), "--output",
                              str(target)), env=child_env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return target


def spec_size(spec: str) -> str:
    return f"{spec_of(curation_of(spec)).stat().st_size / 1e6:.1f} MB"


# -- sections ---------------------------------------------------------------------------


def cold(opts: Options) -> None:
    rows = []
    for spec in opts.specs:
        servers = variants(spec, opts)
        for _ in range(opts.repeat):
            this_round = {variant: RUNS.measure(spec, variant, cmd, env, opts)
                          for variant, (cmd, env) in servers.items()}
            for variant in ("facade", "fastmcp"):
                RUNS.pair(spec, variant, this_round[variant], this_round["floor"])
        rows.append([spec, spec_size(spec), RUNS.cell(spec, "floor"), RUNS.cell(spec, "facade"),
                     RUNS.ratio(spec, "facade"), RUNS.cell(spec, "fastmcp"),
                     RUNS.ratio(spec, "fastmcp")])
    table("1. Cold start: process start → first tools/list answered over stdio, 10 GET "
          "operations",
          ["spec", "size", "floor", "facade", "facade ×floor", "FastMCP.from_openapi",
           "FastMCP ×floor"], rows,
          [f"Median of {opts.repeat} run(s), fastest in parentheses; runs interleaved. "
           "×floor: median of each round's ratio to the floor start just before it. Floor: "
           "a FastMCP server that parses the spec file and registers 10 trivial tools. "
           "FastMCP keeps the same 10 operations with route maps. Target: facade ≤ 1.20× floor.",
           *_errors()])


def warm(opts: Options) -> None:
    rows = []
    tiny = [PY, str(FLOOR), str(TINY_SPEC)]
    for spec in ("example", *opts.specs):
        servers = variants(spec, opts, warm=True)
        for _ in range(opts.repeat):
            base = RUNS.measure("petstore", "floor", tiny, child_env(), opts)
            for variant in ("facade-warm", "facade") if spec == "example" else ("facade-warm",):
                cmd, env = servers[variant]
                start = RUNS.measure(spec, variant, cmd, env, opts)
                if variant == "facade-warm":
                    RUNS.pair(spec, variant, start, base)
        rows.append([spec, spec_size(spec), RUNS.cell(spec, "facade-warm"),
                     RUNS.ratio(spec, "facade-warm"), RUNS.cell(spec, "facade"),
                     RUNS.cell(spec, "floor")])
    table("2. Warm start: facade serve from a `facade build` artifact, vs the floor on a tiny "
          "spec",
          ["spec", "size", "facade warm", "×floor(tiny)", "facade cold", "floor (this spec)"],
          rows,
          [f"floor(tiny): the floor on the 2.8 KB OpenAPI petstore, measured alongside: "
           f"{RUNS.cell('petstore', 'floor')}. Median of {opts.repeat} run(s), fastest in "
           "parentheses; ×floor(tiny): median of each round's ratio to the floor(tiny) start "
           "just before it; '-' means not measured in this run (run the cold section too). "
           "Target: facade warm ≤ 1.10× floor(tiny).", *_errors()])


def memory(opts: Options) -> None:
    rows = []
    for spec in ("example", "stripe"):
        servers = variants(spec, opts, warm=True)
        for variant in ("floor", "facade", "facade-warm", "fastmcp"):
            if RUNS.last(spec, variant) is None:
                cmd, env = servers[variant]
                RUNS.measure(spec, variant, cmd, env, opts)
        cells = []
        for variant in ("floor", "facade", "facade-warm", "fastmcp"):
            start = RUNS.last(spec, variant)
            cells.append(f"{mb(start.rss_kb)} (peak {mb(start.peak_kb)})" if start else
                         ("fails" if (spec, variant) in RUNS.errors else "-"))
        rows.append([spec, spec_size(spec), *cells])
    table("3. Memory: RSS after the first tools/list (peak RSS in parentheses)",
          ["spec", "size", "floor", "facade cold", "facade warm", "FastMCP.from_openapi"], rows,
          ["The floor keeps its parsed spec, as a server that only parses it would.",
           *_retained(), *_errors()])


def _retained() -> list[str]:
    """Python heap kept after `load()`: what the façade holds, whatever the allocator does."""
    code = ("import gc, json, sys, tracemalloc; from facade.loading.loader import load; "
            "tracemalloc.start(); f = load(sys.argv[1]); gc.collect(); "
            "now, peak = tracemalloc.get_traced_memory(); "
            "print(json.dumps([now, peak, len(f.tools)]))")
    lines = []
    for spec in ("example", "stripe"):
        out = subprocess.run([PY, "-c", code, str(curation_of(spec))], capture_output=True,
                             text=True, env=child_env(), check=True).stdout
        now, peak, tools = json.loads(out)
        lines.append(f"{spec}: {now / 1e6:.1f} MB kept after load() for {tools} tools "
                     f"(peak {peak / 1e6:.1f} MB while loading)")
    return ["Python heap traced by tracemalloc in a fresh process: " + "; ".join(lines) + "."]


def _errors() -> list[str]:
    return [f"{spec}/{variant} failed: {why}" for (spec, variant), why in RUNS.errors.items()]
