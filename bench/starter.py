"""`facade init` on the big specs: the whole command, and where its time goes.

The command is timed as a curator runs it (a fresh process writing the starter), beside a
fresh process that only starts the command line (`facade --version`), interleaved, so the
ratio shows what reading the spec and outlining every operation add to starting Python.
The phases are timed in one fresh process per spec: parsing and indexing the spec, naming
every operation (each read through the loader), and listing parameters and response fields.
Target: the whole command under 2 s on Stripe and GitHub.
"""

from __future__ import annotations

import json
import subprocess
import time

from lib import CURATIONS, PY, Options, child_env, facade_cmd, median, ms, spec_of, table

TARGET = 2.0
_PHASES = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from facade.curate.outline import outline
from facade.curate.scaffold import starter_curation
from facade.loading.spec import load_spec
imported = time.perf_counter()
spec = load_spec(Path(sys.argv[1]))
loaded = time.perf_counter()
names = outline(spec, details=False)
named = time.perf_counter()
spec = load_spec(Path(sys.argv[1]))
reloaded = time.perf_counter()
outline(spec)
outlined = time.perf_counter()
text = starter_curation(Path(sys.argv[1]), Path(sys.argv[2]))
written = time.perf_counter()
print(json.dumps({"import": imported - started, "load": loaded - imported,
                  "names": named - loaded, "outline": outlined - reloaded,
                  "starter": written - outlined, "operations": len(names),
                  "lines": text.count("\\n"), "bytes": len(text.encode())}))
"""


def _timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=child_env(), timeout=120)
    return time.perf_counter() - started


def run(opts: Options) -> None:
    rows, phase_rows = [], []
    for spec in opts.specs:
        path = spec_of(CURATIONS / f"{spec}.yaml")
        out = opts.workdir / f"init-{spec}.yaml"
        inits, starts, ratios = [], [], []
        for _ in range(opts.repeat):
            starts.append(_timed(facade_cmd("--version")))
            inits.append(_timed(facade_cmd("init", "--spec", str(path), "-o", str(out),
                                           "--force")))
            ratios.append(inits[-1] / starts[-1])
        seconds = median(inits)
        rows.append([spec, ms(seconds), f"({ms(min(inits))})", ms(median(starts)),
                     f"{median(ratios):.2f}", "yes" if seconds < TARGET else "**no**"])
        child = subprocess.run([PY, "-c", _PHASES, str(path), str(out)], check=True,
                               capture_output=True, text=True, env=child_env(), timeout=120)
        phases = json.loads(child.stdout.strip().splitlines()[-1])
        phase_rows.append([spec, f"{phases['operations']:,}", ms(phases["import"]),
                           ms(phases["load"]), ms(phases["names"]), ms(phases["outline"]),
                           ms(phases["starter"]), f"{phases['lines']:,}",
                           f"{phases['bytes'] / 1024:,.0f} KB"])
    table("facade init: the whole command, a fresh process (median of "
          f"{opts.repeat}, fastest in parentheses)",
          ["spec", "init", "fastest", "`facade --version`", "ratio", f"< {TARGET:g} s"], rows,
          ["ratio: median of each round's init / `--version` start measured just before it."])
    table("facade init: phases in one fresh process",
          ["spec", "operations", "import", "parse + index", "names (every operation read)",
           "+ params and fields", "starter text", "lines", "size"], phase_rows,
          ["`names` reads every operation through the loader (its `$ref`s into other files "
           "included); `+ params and fields` is the same on a fresh parse, with the "
           "comments; `starter text` is the whole `starter_curation` once more (a fresh "
           "parse, imports done)."])
