"""Per-call overhead (in memory, fastmcp client) and the profiles of start-up and calls."""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lib import (
    BENCH,
    CURATIONS,
    PY,
    Options,
    backend,
    child_env,
    median,
    ms,
    operation_labels,
    percentile,
    spec_of,
    table,
)

CALLS = CURATIONS / "calls.yaml"
NOOP = "MCP alone: no-op FastMCP tool"
HAND = "hand-written FastMCP tool, same GET"
Call = Callable[[], Awaitable[Any]]


def _facade_server(url: str) -> Any:
    from facade.loading.loader import load
    from facade.serve.server import build_server

    env = child_env(BENCH_BACKEND_URL=url, FACADE_ARTIFACT="off")
    return build_server(load(CALLS, environ=env), environ=env)


def _fastmcp_server(url: str) -> Any:
    sys.path.insert(0, str(BENCH / "servers"))
    import openapi

    return openapi.build(spec_of(CALLS), operation_labels(CALLS), url)


def _noop_server(small: Any, large: Any) -> Any:
    """FastMCP tools that return the answers from memory: what the MCP session alone costs."""
    from fastmcp import FastMCP

    server: Any = FastMCP("noop")

    @server.tool  # async, like facade's tools: a sync one would add a thread hop
    async def get_item(sku: str) -> dict[str, Any]:
        """One item."""
        return small  # type: ignore[no-any-return]

    @server.tool
    async def list_items() -> dict[str, Any]:
        """All items."""
        return large  # type: ignore[no-any-return]

    return server


def _handwritten_server(http: Any) -> Any:
    sys.path.insert(0, str(BENCH / "servers"))
    import handwritten

    return handwritten.build(http)


async def _timed(call: Call, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return seconds


class Variants:
    """The ways to make one call, sharing one backend, clients opened once."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> Variants:
        import httpx
        from fastmcp import Client

        self.http = httpx.AsyncClient(base_url=self.url + "/")
        self.hand_http = httpx.AsyncClient(base_url=self.url + "/")
        self.facade = Client(_facade_server(self.url))
        self.fastmcp = Client(_fastmcp_server(self.url))
        small = (await self.http.get("items/SKU-1042")).json()
        large = (await self.http.get("items")).json()
        self.noop = Client(_noop_server(small, large))
        self.hand = Client(_handwritten_server(self.hand_http))
        await self.facade.__aenter__()
        await self.fastmcp.__aenter__()
        await self.noop.__aenter__()
        await self.hand.__aenter__()
        names = {t.name.lower(): t.name for t in await self.fastmcp.list_tools()}
        self.fastmcp_names = {"small": names["getitem"], "large": names["listitems"]}
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hand.__aexit__(None, None, None)
        await self.noop.__aexit__(None, None, None)
        await self.fastmcp.__aexit__(None, None, None)
        await self.facade.__aexit__(None, None, None)
        await self.http.aclose()
        await self.hand_http.aclose()

    def calls(self, size: str) -> dict[str, Call]:
        path, tool, args = (("items/SKU-1042", "get_item", {"sku": "SKU-1042"}) if size == "small"
                            else ("items", "list_items", {}))

        async def direct() -> Any:
            response = await self.http.get(path)
            response.raise_for_status()
            return response.json()

        async def facade() -> Any:
            return (await self.facade.call_tool(tool, args)).structured_content

        async def fastmcp() -> Any:
            return (await self.fastmcp.call_tool(self.fastmcp_names[size], args)
                    ).structured_content

        async def noop() -> Any:
            return (await self.noop.call_tool(tool, args)).structured_content

        async def hand() -> Any:
            return (await self.hand.call_tool(tool, args)).structured_content

        return {"direct httpx": direct, "facade": facade, "FastMCP.from_openapi": fastmcp,
                NOOP: noop, HAND: hand}


async def _per_call(url: str, count: int) -> dict[tuple[str, str], tuple[list[float], int]]:
    results: dict[tuple[str, str], tuple[list[float], int]] = {}
    async with Variants(url) as variants:
        for size in ("small", "large"):
            calls = variants.calls(size)
            rounds = 4
            per_round = max(count // rounds, 1)
            for name, call in calls.items():  # warm up: connections, caches, first-call work
                for _ in range(20):
                    await call()
            for _ in range(rounds):  # interleaved, so drift hits every variant alike
                for name, call in calls.items():
                    seconds, _ = results.get((size, name), ([], 0))
                    body = len(json.dumps(await call(), separators=(",", ":")).encode())
                    results[(size, name)] = (seconds + await _timed(call, per_round), body)
    return results


def per_call(opts: Options) -> None:
    with backend() as url:
        results = asyncio.run(_per_call(url, opts.calls))
    rows = []
    for size in ("small", "large"):
        base = median(results[(size, "direct httpx")][0])
        session = median(results[(size, NOOP)][0])
        hand = median(results[(size, HAND)][0])
        for name in ("direct httpx", "facade", "FastMCP.from_openapi", HAND, NOOP):
            seconds, body = results[(size, name)]
            p50 = median(seconds)
            added = "-" if name in ("direct httpx", NOOP) else ms(p50 - base)
            own = "-" if name in ("direct httpx", NOOP) else ms(p50 - base - session)
            beyond_hand = ms(p50 - hand) if name in ("facade", "FastMCP.from_openapi") else "-"
            rows.append([f"{size}: {name}", f"{len(seconds)}", f"{body:,} B", ms(p50),
                         ms(percentile(seconds, 99)), ms(sum(seconds) / len(seconds)),
                         added, own, beyond_hand])
    table("4. Per call: in-memory fastmcp Client → server → loopback backend",
          ["variant", "calls", "result", "p50", "p99", "mean", "added at p50",
           "added beyond MCP", "beyond hand-written"], rows,
          ["small: GET /items/{sku}, ~0.5 KB. large: GET /items, ~200 KB; facade applies "
           "`include` and redaction (its result is smaller), FastMCP returns it whole. "
           "'added' is p50 minus the direct httpx p50. The no-op FastMCP tool returns the "
           "same answer from memory, with no backend: its p50 is what the MCP session "
           "(client and server, both in this process) costs by itself, and 'added beyond "
           "MCP' subtracts it too. The hand-written FastMCP tool makes the same GET with "
           "the same httpx and returns the JSON as it is: the least any MCP tool in front "
           "of this backend costs through this client; 'beyond hand-written' is p50 minus "
           "its p50. Calls interleaved in 4 rounds. Targets: facade's added p50 ≤ "
           "FastMCP's; < 1 ms for the small response."])


# -- profiles ---------------------------------------------------------------------------

_PHASES = """
import asyncio, json, sys, time
t0 = time.perf_counter()
import facade.cli
from facade.loading.artifact import artifact_path, load_fast
t1 = time.perf_counter()
config = __import__("pathlib").Path(sys.argv[1])
built, why = load_fast(config, artifact=artifact_path(config))
t2 = time.perf_counter()
import facade.serve.server
t3 = time.perf_counter()
server = facade.serve.server.build_server(built)
t4 = time.perf_counter()
from fastmcp import Client
async def first_list():
    async with Client(server) as client:
        return await client.list_tools()
asyncio.run(first_list())
t5 = time.perf_counter()
print(json.dumps([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]))
"""


def _phases(opts: Options) -> None:
    rows = []
    for spec in ("stripe", "github"):
        curation = CURATIONS / f"{spec}.yaml"
        artifact = opts.workdir / f"phases-{spec}.json"
        subprocess.run([PY, "-m", "facade", "build", "-c", str(curation), "-o", str(artifact)],
                       env=child_env(), check=True, capture_output=True)
        for mode, env in (("cold", child_env(FACADE_ARTIFACT="off")),
                          ("warm", child_env(FACADE_ARTIFACT=str(artifact)))):
            runs = [json.loads(subprocess.run([PY, "-c", _PHASES, str(curation)], env=env,
                                              check=True, capture_output=True, text=True
                                              ).stdout) for _ in range(max(opts.repeat, 1))]
            phases = [median([r[i] for r in runs]) for i in range(5)]
            rows.append([f"{spec} {mode}", *(ms(p) for p in phases), ms(sum(phases))])
    table("Start-up phases, in process (median)",
          ["spec", "import facade.cli", "load", "import facade.serve.server", "build_server",
           "first tools/list", "total"], rows,
          ["`import facade.cli` includes pydantic; `import facade.serve.server` is mostly fastmcp "
           "(the floor pays it too). build_server is call-time code (facade/serve/server.py)."])


def _buckets(stats: pstats.Stats, top: int) -> tuple[list[list[str]], list[list[str]]]:
    groups: dict[str, float] = {}
    total = 0.0
    functions = []
    for (file, line, func), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        if "/facade/" in file and "site-packages" not in file:
            group = "facade/" + file.rsplit("/", 1)[-1]
        else:
            parts = file.split("site-packages/")
            group = parts[1].split("/")[0] if len(parts) > 1 else (
                "python stdlib" if "/lib/python" in file else "builtins")
        groups[group] = groups.get(group, 0.0) + tottime
        functions.append((tottime, calls, f"{file.rsplit('/', 2)[-2:][-1]}:{line}({func})",
                          cumtime))
    shares = sorted(groups.items(), key=lambda kv: -kv[1])[:top]
    group_rows = [[g, f"{t / total * 100:.1f} %"] for g, t in shares]
    functions.sort(reverse=True)
    fn_rows = [[name, f"{calls:,}", f"{t * 1000:.1f} ms", f"{c * 1000:.1f} ms"]
               for t, calls, name, c in functions[:top]]
    return group_rows, fn_rows


def _profile_calls(url: str, count: int, out: Path | None) -> list[tuple[str, pstats.Stats]]:
    async def run() -> list[tuple[str, pstats.Stats]]:
        found = []
        async with Variants(url) as variants:
            for size in ("small", "large"):
                call = variants.calls(size)["facade"]
                for _ in range(20):
                    await call()
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(count if size == "small" else max(count // 4, 1)):
                    await call()
                profiler.disable()
                if out:
                    profiler.dump_stats(out / f"call-{size}.prof")
                found.append((size, pstats.Stats(profiler)))
        return found

    return asyncio.run(run())


def profile(opts: Options) -> None:
    _phases(opts)
    from facade.loading.loader import load
    from facade.serve.server import build_server

    profiler = cProfile.Profile()
    profiler.enable()
    build_server(load(CURATIONS / "stripe.yaml", environ=child_env()))
    profiler.disable()
    if opts.profile_dir:
        opts.profile_dir.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(opts.profile_dir / "startup-stripe.prof")
    groups, functions = _buckets(pstats.Stats(profiler), 12)
    table("Profile: cold load() + build_server() of Stripe, share of time by package",
          ["package or facade module", "share"], groups)
    table("Profile: the same, top functions by own time",
          ["function", "calls", "own time", "cumulative"], functions)
    count = min(opts.calls, 1000)
    with backend() as url:
        profiles = _profile_calls(url, count, opts.profile_dir)
    for size, stats in profiles:
        groups, functions = _buckets(stats, 14)
        table(f"Profile: facade {size}-response calls through the in-memory client "
              f"({count if size == 'small' else max(count // 4, 1)} calls), share of time",
              ["package or facade module", "share"], groups,
              ["Client and server run in one process: fastmcp/mcp/pydantic time is both "
               "sides of the MCP session."])
        table(f"Profile: facade {size}-response calls, top functions by own time",
              ["function", "calls", "own time", "cumulative"], functions)
