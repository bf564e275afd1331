"""Throughput over streamable HTTP: 1, 8, 32 and 128 concurrent clients against one and
two `facade serve --transport http` processes.

Goodput counts calls answered without error. A call the façade sheds (503, past
`server.limits.max_in_flight`) is counted apart, and its client waits the `Retry-After`
it was given before its next call, as a well-behaved client does.

The clients are plain JSON-RPC `tools/call` POSTs (the façade serves stateless JSON), sent
by one asyncio process with httpx: lighter than a full MCP client, so the façade is the
bottleneck as far as one machine allows. With two processes, clients alternate between
their ports. Every cell is bounded by a duration and a call count.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from lib import (
    CURATIONS,
    Options,
    backend,
    child_env,
    facade_cmd,
    free_port,
    ms,
    percentile,
    stop,
    table,
    wait_for_port,
)

CALLS = CURATIONS / "calls.yaml"
CONCURRENCY = (1, 8, 32, 128)
MAX_CALLS = 20_000
REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": "get_item", "arguments": {"sku": "SKU-1042"}}}
HEADERS = {"Accept": "application/json, text/event-stream"}


@contextlib.contextmanager
def servers(count: int, url: str, opts: Options) -> Iterator[list[str]]:
    procs: list[subprocess.Popen[bytes]] = []
    endpoints = []
    try:
        for i in range(count):
            port = free_port()
            log = open(opts.workdir / f"http-{count}-{i}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen(
                facade_cmd("serve", "--config", str(CALLS), "--transport", "http", "--port",
                           str(port)),
                env=child_env(BENCH_BACKEND_URL=url), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT))
            log.close()
            wait_for_port(procs[-1], port)
            endpoints.append(f"http://127.0.0.1:{port}/mcp")
        yield endpoints
    finally:
        for proc in procs:
            stop(proc)


async def _load(endpoints: list[str], clients: int, duration: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = shed = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        for endpoint in endpoints:  # one call each first: connections and first-call work
            await http.post(endpoint, json=REQUEST, headers=HEADERS)
        deadline = time.perf_counter() + duration

        async def worker(index: int) -> None:
            nonlocal errors, shed
            endpoint = endpoints[index % len(endpoints)]
            while time.perf_counter() < deadline and len(latencies) + shed < MAX_CALLS:
                started = time.perf_counter()
                response = await http.post(endpoint, json=REQUEST, headers=HEADERS)
                if response.status_code == 503 and "retry-after" in response.headers:
                    shed += 1
                    await asyncio.sleep(min(float(response.headers["retry-after"]),
                                            max(0.0, deadline - time.perf_counter())))
                    continue
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or b'"isError":false' not in response.content:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return {"calls": len(latencies), "seconds": elapsed, "errors": errors, "shed": shed,
            "good": len(latencies) - errors,
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


def run(opts: Options) -> None:
    rows = []
    with backend() as url:
        for processes in (1, 2):
            with servers(processes, url, opts) as endpoints:
                for clients in CONCURRENCY:
                    result = asyncio.run(_load(endpoints, clients, opts.duration))
                    rows.append([f"{processes} process(es), {clients} client(s)",
                                 f"{result['calls']:,}",
                                 f"{result['good'] / result['seconds']:,.0f}",
                                 ms(result["p50"]), ms(result["p99"]), str(result["errors"]),
                                 f"{result['shed']:,}"])
    table("5. Throughput: facade serve --transport http (stateless JSON), small tool call",
          ["setup", "answered", "goodput/s", "p50", "p99", "errors", "shed (503)"], rows,
          [f"{opts.duration:g} s per cell (at most {MAX_CALLS:,} calls). Backend, façade "
           "process(es) and the load generator share this machine's CPUs; each call also "
           "writes an audit line."])
