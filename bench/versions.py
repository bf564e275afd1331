"""facade against an earlier facade: start-up and per-call cost, side by side in one run.

    python bench/versions.py --baseline d7e057d            # the default rounds: ~10 minutes
    python bench/versions.py --baseline v0.1.0 --rounds 3 --calls 300 --specs stripe

Both versions run from the same virtualenv (same Python, fastmcp, httpx …): the baseline's
source tree is checked out in a temporary git worktree and put first on `PYTHONPATH`, so
only facade's own code differs. Each measurement is a fresh `python -m facade serve`
process over stdio, driven by a minimal JSON-RPC client written here (newline-delimited
JSON on the pipes), so the client costs the same for both and almost nothing. Rounds
alternate which version goes first; each figure is a median over rounds, and each ratio is
the median of the per-round ratios (current / baseline), so drift of the machine over the
run lands on both sides.

- cold: process start → first `tools/list` answered, `FACADE_ARTIFACT=off`; wall time,
  and CPU time (user + system) of the whole server process, which other load on the
  machine disturbs far less than wall time.
- warm: the same, from a `facade build` artifact each version builds for itself.
- calls: `tools/call` one after another on `bench/curations/calls.yaml` against
  `bench/backend.py`: ~0.5 KB `get_item` and ~200 KB `list_items` (include + redaction);
  p50 and mean wall latency, and the server's CPU time per call (from /proc).
- inproc: the same calls in one process per version, through fastmcp's in-memory
  `Client(server)`: the CPU time per call of server and client together, with no pipes
  or process scheduling in between (the steadiest per-call figure on a busy machine).

Only 127.0.0.1 is used. Nothing is asserted: the figures are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib import CURATIONS, EXAMPLE, ROOT, backend, child_env, median, percentile  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class Server:
    """`python -m facade serve` over stdio with a line-based JSON-RPC client."""

    def __init__(self, tree: Path, curation: Path, env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "facade", "serve", "--config", str(curation)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**env, "PYTHONPATH": str(tree)}, cwd=tree)
        self.next_id = 0

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the server exited during {method}")
            message = json.loads(line)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message["result"])

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def open(self) -> float:
        """initialize → tools/list; the seconds from process start to the list."""
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = self.request("tools/list", {})["tools"]
        if not tools:
            raise RuntimeError("no tools listed")
        return time.perf_counter() - self.started

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime

    def close(self) -> float:
        """Stop the server; its whole CPU time (user + system), in seconds."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            _, _, usage = os.wait4(self.proc.pid, 0)
        except ChildProcessError:
            return float("nan")
        self.proc.returncode = 0
        return usage.ru_utime + usage.ru_stime


@contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="facade-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                        str(tree), rev], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(tree)], check=False)


def start(tree: Path, curation: Path, env: dict[str, str]) -> tuple[float, float]:
    server = Server(tree, curation, env)
    try:
        seconds = server.open()
    finally:
        cpu = server.close()
    return seconds, cpu


def calls(tree: Path, url: str, count: int) -> dict[str, tuple[list[float], float]]:
    """Per tool: the wall latency of each call, and the server's CPU seconds per call."""
    env = child_env(FACADE_ARTIFACT="off", BENCH_BACKEND_URL=url)
    server = Server(tree, CURATIONS / "calls.yaml", env)
    out = {}
    try:
        server.open()
        for tool, args in (("get_item", {"sku": "SKU-1"}), ("list_items", {})):
            for _ in range(20):  # warm-up: connections, caches
                server.request("tools/call", {"name": tool, "arguments": args})
            cpu, times = server.cpu(), []
            for _ in range(count):
                began = time.perf_counter()
                result = server.request("tools/call", {"name": tool, "arguments": args})
                times.append(time.perf_counter() - began)
                if result.get("isError"):
                    raise RuntimeError(f"{tool}: {result['content'][0]['text'][:200]}")
            out[tool] = (times, (server.cpu() - cpu) / count)
    finally:
        server.close()
    return out


def inproc(tree: Path, url: str, count: int) -> dict[str, tuple[float, float]]:
    """Per tool: (CPU seconds, wall seconds) per call, in a child process of that version."""
    out = subprocess.run([sys.executable, __file__, "--child", url, str(count)],
                         env={**child_env(FACADE_ARTIFACT="off", BENCH_BACKEND_URL=url),
                              "PYTHONPATH": str(tree)}, cwd=tree, capture_output=True,
                         text=True, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr.strip().splitlines()[-1][:200])
    return {tool: (cpu, wall) for tool, cpu, wall in json.loads(out.stdout)}


def child(url: str, count: int) -> None:
    """`--child`: the in-memory calls of the facade on PYTHONPATH, printed as JSON."""
    import asyncio

    from fastmcp import Client

    from facade import load
    try:
        from facade.serve.server import build_server
    except ImportError:  # before the layout of 0.2
        from facade.server import build_server  # type: ignore[no-redef]

    server = build_server(load(CURATIONS / "calls.yaml"))

    async def run() -> list[tuple[str, float, float]]:
        found = []
        async with Client(server) as client:
            for tool, args in (("get_item", {"sku": "SKU-1"}), ("list_items", {})):
                for _ in range(30):
                    await client.call_tool(tool, args)
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(count):
                    await client.call_tool(tool, args)
                found.append((tool, (time.process_time() - cpu) / count,
                              (time.perf_counter() - wall) / count))
        return found

    print(json.dumps(asyncio.run(run())))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds >= 0.01 else f"{seconds * 1000:.3f} ms"


def row(name: str, base: list[float], cur: list[float]) -> str:
    ratios = [c / b for b, c in zip(base, cur, strict=True) if b]
    return f"| {name} | {ms(median(base))} | {ms(median(cur))} | {median(ratios):.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a git revision to compare with")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=1000, help="calls per tool per round")
    parser.add_argument("--specs", default="example,stripe,github",
                        help="curations for cold/warm: example and/or bench curations")
    parser.add_argument("--sections", default="cold,warm,calls,inproc")
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
        return
    opts = parser.parse_args()
    sections = opts.sections.split(",")
    curations = {name: EXAMPLE if name == "example" else CURATIONS / f"{name}.yaml"
                 for name in opts.specs.split(",")}
    load = os.getloadavg()
    with baseline_tree(opts.baseline) as old, tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": old, "current": ROOT}
        lines: list[str] = []
        figures: dict[str, dict[str, list[float]]] = {}

        def record(key: str, version: str, value: float) -> None:
            figures.setdefault(key, {"baseline": [], "current": []})[version].append(value)

        artifacts: dict[tuple[str, str], Path] = {}
        if "warm" in sections:
            for version, tree in trees.items():
                for name, curation in curations.items():
                    target = Path(tmp) / f"{version}-{name}.json"
                    subprocess.run([sys.executable, "-m", "facade", "build", "--config",
                                    str(curation), "--output", str(target)], check=True,
                                   env={**child_env(), "PYTHONPATH": str(tree)}, cwd=tree,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    artifacts[version, name] = target
        with backend() as url:
            for i in range(opts.rounds):
                order = list(trees.items()) if i % 2 == 0 else list(trees.items())[::-1]
                for version, tree in order:
                    for name, curation in curations.items():
                        if "cold" in sections:
                            wall, cpu = start(tree, curation, child_env(FACADE_ARTIFACT="off"))
                            record(f"cold {name}: wall", version, wall)
                            record(f"cold {name}: CPU", version, cpu)
                        if "warm" in sections:
                            env = child_env(FACADE_ARTIFACT=str(artifacts[version, name]))
                            wall, cpu = start(tree, curation, env)
                            record(f"warm {name}: wall", version, wall)
                            record(f"warm {name}: CPU", version, cpu)
                    if "inproc" in sections:
                        for tool, (cpu, wall) in inproc(tree, url, opts.calls).items():
                            record(f"in-process {tool}: CPU", version, cpu)
                            record(f"in-process {tool}: wall", version, wall)
                    if "calls" in sections:
                        for tool, (times, cpu) in calls(tree, url, opts.calls).items():
                            record(f"call {tool}: p50", version, percentile(times, 50))
                            record(f"call {tool}: p99", version, percentile(times, 99))
                            record(f"call {tool}: mean", version, sum(times) / len(times))
                            record(f"call {tool}: server CPU", version, cpu)
                print(f"round {i + 1}/{opts.rounds} done", file=sys.stderr, flush=True)
        lines += [f"facade {opts.baseline} (baseline) vs the working tree, same virtualenv; "
                  f"{opts.rounds} rounds, {opts.calls} calls per tool per round; load average "
                  f"at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, at end "
                  + " ".join(f"{x:.2f}" for x in os.getloadavg()), "",
                  "| measure | baseline | current | current / baseline |", "|---|---|---|---|"]
        lines += [row(key, v["baseline"], v["current"]) for key, v in figures.items()]
        print("\n".join(lines))


if __name__ == "__main__":
    main()
