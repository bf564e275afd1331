"""Throughput over streamable HTTP, side by side: facade with 1 and 2 worker processes, a
FastMCP tool written by hand that makes the same GET, and FastMCP.from_openapi for the
same operation (each of those two in one process, served by FastMCP's own HTTP app), at
1, 8 and 32 concurrent clients.

Every server answers stateless JSON-RPC `tools/call` POSTs for one item (~0.5 KB from
bench/backend.py). The load generator shares the machine's cores with them, so it is kept
lean: one asyncio loop, one kept-alive raw HTTP/1.1 connection per client, the request's
bytes built once, the answer read by its Content-Length and checked for
`"isError":false`. No MCP client library, no httpx: a few tens of microseconds per call.

All four servers run for the whole section; each (clients, server) cell is measured in
slices of half a second, the servers interleaved slice by slice, so that other work on the
machine lands on every server alike. Goodput counts calls answered without error; a call
shed with 503 is counted apart and its client waits the `Retry-After`.

Table 5c first measures the same calls' CPU cost in one process (bench/inprocess.py), and
beside calls/s, each cell of table 5 reports the CPU time the server's processes used per call
(user + system, from /proc, the workers' included): what a call costs, whatever else the
machine is doing at the time, and the figure that decides throughput once a core is
saturated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lib import (
    BENCH,
    CURATIONS,
    OPENAPI,
    PY,
    Options,
    backend,
    child_env,
    facade_cmd,
    free_port,
    median,
    ms,
    percentile,
    spec_of,
    stop,
    table,
    wait_for_port,
)

CALLS = CURATIONS / "calls.yaml"
HANDWRITTEN = BENCH / "servers" / "handwritten.py"
CONCURRENCY = (1, 8, 32)
SLICE = 0.5  # seconds of one server's load before the next server's
MAX_CALLS = 20_000  # per slice
TICK = os.sysconf("SC_CLK_TCK")
FACADE_1, FACADE_2 = "facade, 1 worker", "facade, 2 workers"
HAND, OPENAPI_TOOL = "hand-written FastMCP tool", "FastMCP.from_openapi"


@dataclass
class Target:
    name: str
    port: int
    tool: str  # the tool's name on that server
    log: Path
    pid: int
    samples: dict[int, list[float]] = field(default_factory=dict)  # clients → latencies
    good: Counter[int] = field(default_factory=Counter)
    errors: Counter[int] = field(default_factory=Counter)
    shed: Counter[int] = field(default_factory=Counter)
    seconds: Counter[int] = field(default_factory=Counter)
    cpu: Counter[int] = field(default_factory=Counter)  # clients → server CPU seconds
    client_cpu: Counter[int] = field(default_factory=Counter)  # … the load generator's
    slices: dict[int, list[float]] = field(default_factory=dict)  # clients → calls/s each
    split: dict[int, Counter[int]] = field(default_factory=dict)  # clients → calls per worker

    def request(self) -> bytes:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": self.tool, "arguments": {"sku": "SKU-1042"}}}).encode()
        return (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Content-Type: application/json\r\n"
                "Accept: application/json, text/event-stream\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@contextlib.contextmanager
def servers(url: str, opts: Options) -> Iterator[list[Target]]:
    """The four servers, each on its own port, all up before the first cell."""
    procs: list[subprocess.Popen[bytes]] = []
    targets = []
    commands = {
        FACADE_1: (facade_cmd("serve", "--config", str(CALLS), "--transport", "http"),
                   "get_item"),
        FACADE_2: (facade_cmd("serve", "--config", str(CALLS), "--transport", "http",
                              "--workers", "2"), "get_item"),
        HAND: ([PY, str(HANDWRITTEN), url], "get_item"),
        OPENAPI_TOOL: ([PY, str(OPENAPI), str(spec_of(CALLS)), "--ops", "GET /items/{sku}",
                        "--backend", url], "getItem"),
    }
    try:
        for name, (command, tool) in commands.items():
            port = free_port()
            extra = ["--port", str(port)] if name.startswith("facade") else ["--http",
                                                                              str(port)]
            log = opts.workdir / f"http-{name.split(',')[0].replace(' ', '-')}-{port}.log"
            with open(log, "wb") as out:
                procs.append(subprocess.Popen(
                    command + extra, env=child_env(BENCH_BACKEND_URL=url, FACADE_ARTIFACT="off"),
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT))
            wait_for_port(procs[-1], port, timeout=60)
            targets.append(Target(name, port, tool, log, procs[-1].pid))
        yield targets
    finally:
        for proc in procs:
            stop(proc)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"content-length:")
    if at >= 0:
        length = int(lower[at + 15:lower.index(b"\r\n", at)])
        return status, lower, await reader.readexactly(length)
    body = b""  # chunked, should a server answer so
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if not size:
            return status, lower, body
        body += chunk[:-2]


async def _cell(target: Target, clients: int, duration: float) -> None:
    request = target.request()
    latencies = target.samples.setdefault(clients, [])
    connections = [await asyncio.open_connection("127.0.0.1", target.port)
                   for _ in range(clients)]
    for reader, writer in connections:  # one call each first: every connection is warm
        writer.write(request)
        await _read_answer(reader)
    calls = 0
    deadline = time.perf_counter() + duration

    async def client(index: int) -> None:
        nonlocal calls
        reader, writer = connections[index]
        while time.perf_counter() < deadline and calls < MAX_CALLS:
            started = time.perf_counter()
            writer.write(request)
            status, head, body = await _read_answer(reader)
            calls += 1
            if status == 503 and b"retry-after:" in head:
                target.shed[clients] += 1
                await asyncio.sleep(min(1.0, max(0.0, deadline - time.perf_counter())))
            else:
                latencies.append(time.perf_counter() - started)
                if status == 200 and b'"isError":false' in body:
                    target.good[clients] += 1
                else:
                    target.errors[clients] += 1
            if b"connection: close" in head:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", target.port)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    target.seconds[clients] += time.perf_counter() - started
    for _, writer in connections:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and of its children alive now (the workers)."""
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
    for each in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def _workers_seen(log: Path, since: int) -> Counter[int]:
    """Calls per worker in the audit lines a facade wrote since byte `since` of its log."""
    seen: Counter[int] = Counter()
    with open(log, "rb") as f:
        f.seek(since)
        for line in f:
            if line.startswith(b"{") and b'"worker":' in line:
                record = json.loads(line)
                if record.get("logger") == "facade.audit":
                    seen[record["worker"]] += 1
    return seen


def run(opts: Options) -> None:
    rounds = max(1, round(opts.duration / SLICE))
    load_before = os.getloadavg()
    import inprocess

    with backend() as url:
        inprocess.run(url, opts.quick)
    with backend() as url, servers(url, opts) as targets:
        for clients in CONCURRENCY:
            for _ in range(rounds):
                for target in targets:
                    since = target.log.stat().st_size
                    cpu, client = cpu_seconds(target.pid), time.process_time()
                    good, seconds = target.good[clients], target.seconds[clients]
                    asyncio.run(_cell(target, clients, SLICE))
                    target.slices.setdefault(clients, []).append(
                        (target.good[clients] - good) / (target.seconds[clients] - seconds))
                    target.cpu[clients] += cpu_seconds(target.pid) - cpu
                    target.client_cpu[clients] += time.process_time() - client
                    if target.name == FACADE_2:
                        target.split.setdefault(clients, Counter()).update(
                            _workers_seen(target.log, since))
    load_after = os.getloadavg()
    _report(targets, rounds, opts, load_before, load_after)


def _rate(target: Target, clients: int) -> float:
    seconds = target.seconds[clients]
    return target.good[clients] / seconds if seconds else 0.0


def _report(targets: list[Target], rounds: int, opts: Options,
            load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    by = {t.name: t for t in targets}
    rows = []
    for clients in CONCURRENCY:
        for target in targets:
            lat = target.samples.get(clients, [])
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            split = target.split.get(clients)
            calls = len(lat) + target.shed[clients]
            cpu = target.cpu[clients] / calls if calls else float("nan")
            client = target.client_cpu[clients] / calls if calls else float("nan")
            rows.append([f"{target.name}, {clients} client(s)", f"{_rate(target, clients):,.0f}",
                         ms(p50), ms(p99), f"{p99 / p50:.1f}" if lat else "-", ms(cpu), ms(client),
                         str(target.errors[clients]), f"{target.shed[clients]:,}",
                         " / ".join(str(split[w]) for w in sorted(split)) if split else ""])
    table("5. Throughput over streamable HTTP (stateless JSON), one small tools/call",
          ["server, clients", "calls/s", "p50", "p99", "p99/p50", "server CPU/call",
           "load generator CPU/call", "errors",
           "shed (503)", "calls per worker"], rows,
          [f"{rounds} slice(s) of {SLICE:g} s per cell (warm connections), the servers "
           "interleaved slice by slice. The backend, the servers and the load generator share "
           f"this machine's {os.cpu_count()} CPU(s); load average "
           f"{load_before[0]:.1f} before, {load_after[0]:.1f} after. facade writes an audit "
           "line per call; the hand-written tool and FastMCP.from_openapi log nothing."])
    ratios = []

    def paired(a: str, b: str, clients: int) -> str:
        """The median over rounds of a's calls/s over b's in the same round (adjacent
        slices), and in parentheses the ratio of the whole cells."""
        pairs = [x / y for x, y in zip(by[a].slices[clients], by[b].slices[clients]) if y]
        whole = _rate(by[b], clients)
        overall = f" ({_rate(by[a], clients) / whole:.2f})" if whole else ""
        return f"{median(pairs):.2f}{overall}" if pairs else "-"

    for clients in CONCURRENCY:
        hand, one = _cpu_per_call(by[HAND], clients), _cpu_per_call(by[FACADE_1], clients)
        ratios.append([f"{clients} client(s)", paired(FACADE_1, HAND, clients),
                       paired(FACADE_2, HAND, clients), paired(FACADE_2, FACADE_1, clients),
                       paired(OPENAPI_TOOL, HAND, clients),
                       f"{hand / one:.2f}" if one else "-"])
    table("5b. Ratios of calls/s: median of the rounds' ratios (whole cells' ratio)",
          ["clients", "facade 1w / hand-written (target ≥ 0.95)",
           "facade 2w / hand-written", "facade 2w / 1w (target ≥ 1.7)",
           "FastMCP.from_openapi / hand-written",
           "calls per server CPU-second, facade 1w / hand-written"], ratios)


def _cpu_per_call(target: Target, clients: int) -> float:
    calls = len(target.samples.get(clients, [])) + target.shed[clients]
    return target.cpu[clients] / calls if calls else 0.0
