"""CPU per call of the HTTP serving path, in one process: what the throughput cells cost,
undisturbed by how a shared machine schedules the processes.

Each server's ASGI app (facade's as `serve --transport http` builds it; the hand-written
tool's and FastMCP.from_openapi's from FastMCP's `http_app`, stateless JSON) is driven
through httpx's `ASGITransport` with the same `tools/call`, 8 at a time, against
bench/backend.py. The figure is this process's CPU time (user + system) per call: the
server side plus the client side, which is the same for all three, so differences are the
servers'. Rounds interleave the servers; medians. Then the cost of facade's per-call
observers alone (metrics and the audit line), which the other two do not have.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from lib import BENCH, CURATIONS, child_env, median, operation_labels, spec_of, table

CALLS = CURATIONS / "calls.yaml"
CONCURRENT = 8
BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_item", "arguments": {"sku": "SKU-1042"}}}
HEADERS = {"Accept": "application/json, text/event-stream"}


def _apps(url: str) -> dict[str, tuple[Any, Any]]:
    """name → (the ASGI app to call, the Starlette app whose lifespan it needs)."""
    import httpx

    from facade.loading.loader import load
    from facade.serve.http import build_http

    sys.path.insert(0, str(BENCH / "servers"))
    import handwritten
    import openapi

    env = child_env(BENCH_BACKEND_URL=url, FACADE_ARTIFACT="off")
    facade_app, _ = build_http(load(CALLS, environ=env), public_url="http://127.0.0.1:8000",
                               environ=env)
    apps = {"facade": (facade_app, facade_app.app)}  # `_Front` around FastMCP's app
    hand = handwritten.build(httpx.AsyncClient(base_url=url + "/"))
    fastmcp = openapi.build(spec_of(CALLS), operation_labels(CALLS)[:1], url)
    for name, server in (("hand-written FastMCP tool", hand),
                         ("FastMCP.from_openapi", fastmcp)):
        app = server.http_app(path="/mcp", json_response=True, stateless_http=True)
        apps[name] = (app, app)
    return apps


@contextlib.asynccontextmanager
async def _running(starlette_app: Any) -> AsyncIterator[None]:
    async with starlette_app.router.lifespan_context(starlette_app):
        yield


async def _cpu_per_call(app: Any, tool: str, count: int) -> float:
    import httpx

    body = dict(BODY, params={"name": tool, "arguments": {"sku": "SKU-1042"}})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        left = count

        async def client() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                answer = await http.post("/mcp", json=body, headers=HEADERS)
                if answer.status_code != 200 or '"isError":false' not in answer.text:
                    raise RuntimeError(f"{tool}: {answer.status_code} {answer.text[:200]}")

        await client()  # warm
        left = count
        started = time.process_time()
        await asyncio.gather(*(client() for _ in range(CONCURRENT)))
        return (time.process_time() - started) / count


async def _measure(url: str, rounds: int, count: int) -> dict[str, list[float]]:
    apps = _apps(url)
    tools = {"facade": "get_item", "hand-written FastMCP tool": "get_item",
             "FastMCP.from_openapi": "getItem"}
    seconds: dict[str, list[float]] = {name: [] for name in apps}
    async with contextlib.AsyncExitStack() as stack:
        for _, lifespan_app in apps.values():
            await stack.enter_async_context(_running(lifespan_app))
        for _ in range(rounds):
            for name, (app, _) in apps.items():
                seconds[name].append(await _cpu_per_call(app, tools[name], count))
    return seconds


def _observers_cost(count: int = 20_000) -> float:
    """CPU per call of facade's observers alone: metrics plus one audit line."""
    from facade.call.events import CallRecord
    from facade.loading.loader import load
    from facade.serve.metrics import Metrics
    from facade.serve.observe import observers_for

    facade = load(CALLS, environ=child_env(FACADE_ARTIFACT="off"))
    observer = observers_for(facade, Metrics(["get_item"], ["http://b"]))
    started = time.process_time()
    for _ in range(count):
        record = CallRecord(tool="get_item")
        observer.call_started(record)
        observer.backend_response("get_item", 200, 0.001)
        record.backend_status, record.response_bytes = 200, 512
        observer.call_finished(record)
    return (time.process_time() - started) / count


def run(url: str, quick: bool = False) -> None:
    rounds, count = (3, 200) if quick else (5, 400)
    saved = sys.stderr
    with open(os.devnull, "w") as sink:  # the audit lines, as a log file would take them
        sys.stderr = sink
        try:
            seconds = asyncio.run(_measure(url, rounds, count))
            observers = _observers_cost()
        finally:
            sys.stderr = saved
    hand = median(seconds["hand-written FastMCP tool"])
    rows = [[name, f"{median(values) * 1000:.2f} ms", f"{min(values) * 1000:.2f} ms",
             f"{median(values) / hand:.2f}", f"{hand / median(values):.2f}"]
            for name, values in seconds.items()]
    table("5c. CPU per call in one process (ASGI app driven by httpx, client side included)",
          ["server", "median", "best round", "×hand-written", "calls per CPU-second ×hand"],
          rows, [f"{rounds} rounds of {count} calls, {CONCURRENT} at a time, servers "
                 "interleaved. facade's observers alone (metrics + one audit line to "
                 f"/dev/null): {observers * 1e6:.0f} µs per call."])
