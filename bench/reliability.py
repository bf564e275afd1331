"""Reliability figures for `facade serve --transport http`: how long readiness and calls
take to come back after a backend outage with no traffic, and peak memory under 64
concurrent calls that each carry a 1 MB argument. Bounded in count and time."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator

from lib import (
    BACKEND,
    CURATIONS,
    PY,
    Options,
    child_env,
    facade_cmd,
    free_port,
    mb,
    rss_kb,
    stop,
    table,
    wait_for_port,
)

RESET_AFTER = 5.0
HEADERS = {"Accept": "application/json, text/event-stream"}


def _call(name: str, arguments: dict[str, object]) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}


@contextlib.contextmanager
def _backend(port: int) -> Iterator[None]:
    proc = subprocess.Popen([PY, str(BACKEND), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=child_env())
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # printed once it accepts connections
        yield
    finally:
        stop(proc)


@contextlib.contextmanager
def _facade(opts: Options, backend_port: int) -> Iterator[tuple[str, int]]:
    curation = opts.workdir / "reliability.yaml"
    text = (CURATIONS / "calls.yaml").read_text().replace(
        "spec: ../specs/calls.yaml", f"spec: {CURATIONS.parent / 'specs' / 'calls.yaml'}")
    curation.write_text(text.replace("backend:\n", "backend:\n  retries: {attempts: 0}\n"
                                     "  circuit_breaker: {failures: 2, reset_after: "
                                     f"{RESET_AFTER:g}}}\n", 1))
    port = free_port()
    log = open(opts.workdir / "reliability.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        facade_cmd("serve", "--config", str(curation), "--transport", "http", "--port",
                   str(port)),
        env=child_env(BENCH_BACKEND_URL=f"http://127.0.0.1:{backend_port}/v1"),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_for_port(proc, port)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        stop(proc)


def _outage(opts: Options) -> list[str]:
    import httpx

    backend_port = free_port()
    with _facade(opts, backend_port) as (base, _), httpx.Client(timeout=10) as http:
        ok = _call("get_item", {"sku": "SKU-1042"})
        with _backend(backend_port):
            assert b'"isError":false' in http.post(base + "/mcp", json=ok,
                                                    headers=HEADERS).content
        for _ in range(3):  # backend gone: the breaker opens
            http.post(base + "/mcp", json=ok, headers=HEADERS)
        not_ready = sum(http.get(base + "/readyz").status_code != 200 for _ in range(20))
        with _backend(backend_port):
            back = time.perf_counter()
            while http.get(base + "/readyz").status_code != 200:
                if time.perf_counter() - back > 60:
                    break
            ready = time.perf_counter() - back
            while b'"isError":false' not in http.post(base + "/mcp", json=ok,
                                                       headers=HEADERS).content:
                if time.perf_counter() - back > 60:
                    break
                time.sleep(0.1)  # a client retrying ten times a second
            served = time.perf_counter() - back
    return [f"{not_ready} of 20", f"{ready * 1000:.0f} ms", f"{served:.1f} s"]


async def _huge(base: str, count: int) -> int:
    import httpx

    huge = _call("list_items", {"limit": "9" * 1_000_000})
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as c:
        answers = await asyncio.gather(*(c.post(base + "/mcp", json=huge, headers=HEADERS)
                                         for _ in range(count)))
    return max(len(a.content) for a in answers)


def _memory(opts: Options) -> list[str]:
    backend_port = free_port()
    with _backend(backend_port), _facade(opts, backend_port) as (base, pid):
        _, before = rss_kb(pid)
        largest = asyncio.run(_huge(base, 64))
        _, peak = rss_kb(pid)
    return [mb(before), mb(peak), f"{largest:,} B"]


def run(opts: Options) -> None:
    table("8. Backend outage with no traffic (breaker: 2 failures, reset_after 5 s)",
          ["/readyz not 200 during outage", "readiness after backend returns",
           "first call served after backend returns"], [_outage(opts)],
          ["Calls retried every 0.1 s once the backend is back; the first succeeds when the "
           "breaker's probe is due."])
    table("9. 64 concurrent calls, each with a 1 MB argument (list_items limit)",
          ["peak RSS before", "peak RSS after", "largest answer"], [_memory(opts)],
          ["VmHWM of the façade process; the argument cap (64 KiB) refuses each call before "
           "its schema check."])
