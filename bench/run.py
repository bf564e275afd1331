"""facade benchmarks, measured side by side with the alternatives in one run.

    python bench/run.py                       # everything (about 20 minutes on 2 cores)
    python bench/run.py --quick               # fewer repeats and calls (about 5 minutes)
    python bench/run.py --sections cold,warm --specs stripe,github
    python bench/run.py --sections init       # `facade init` on the big specs (~1 minute)
    python bench/run.py --sections http --duration 16   # 32 slices per cell (~5 minutes)

See bench/README.md for what each section measures. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib import BIG_SPECS, CORPUS, Options  # noqa: E402

SECTIONS = ("cold", "warm", "memory", "calls", "http", "reliability", "size", "profile",
            "lambda", "init", "tracing")


def run_section(name: str, opts: Options) -> None:
    if name in ("cold", "warm", "memory"):
        import startup

        getattr(startup, name)(opts)
    elif name == "calls":
        import calls

        calls.per_call(opts)
    elif name == "profile":
        import calls

        calls.profile(opts)
    elif name == "http":
        import throughput

        throughput.run(opts)
    elif name == "reliability":
        import reliability

        reliability.run(opts)
    elif name == "size":
        import size

        size.run(opts)
    elif name == "lambda":
        import serverless

        serverless.run(opts)
    elif name == "init":
        import starter

        starter.run(opts)
    elif name == "tracing":
        import tracing

        tracing.run(opts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, from {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--specs", default=",".join(BIG_SPECS),
                        help="corpus specs for the start-up and size sections")
    parser.add_argument("--quick", action="store_true",
                        help="1 start per server, 300 calls, 1.5 s per throughput cell")
    parser.add_argument("--repeat", type=int, help="starts per server (default 5, quick 1)")
    parser.add_argument("--calls", type=int, help="calls per variant (default 2000)")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="load per server in each throughput cell, in slices of 0.5 s "
                        "(default 4, quick 1.5): more slices narrow the ratios' noise")
    parser.add_argument("--profile-dir", type=Path, help="also write .prof files here")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    specs = tuple(s.strip() for s in args.specs.split(",") if s.strip())
    if set(specs) - set(BIG_SPECS):
        parser.error(f"--specs: choose from {', '.join(BIG_SPECS)}")
    if not CORPUS.is_dir():
        sys.exit(f"the specs corpus is missing: {CORPUS} (a sibling of the repository)")
    with tempfile.TemporaryDirectory(prefix="facade-bench-") as workdir:
        opts = Options(
            quick=args.quick,
            repeat=args.repeat or (1 if args.quick else 5),
            calls=args.calls or (300 if args.quick else 2000),
            duration=args.duration or (1.5 if args.quick else 4.0),
            specs=specs,
            workdir=Path(workdir),
            profile_dir=args.profile_dir,
        )
        print(f"# facade benchmarks ({'quick' if args.quick else 'full'}): Python "
              f"{platform.python_version()}, {os.cpu_count()} CPU(s), {platform.machine()}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}")
        for name in sections:
            started = time.perf_counter()
            run_section(name, opts)
            print(f"\n({name}: {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
