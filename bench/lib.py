"""What the benchmark sections share: paths, child processes, timing, statistics, tables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# The corpus is a sibling of the repository checkout: ../shared/specs-corpus.
CORPUS = ROOT.parent / "shared" / "specs-corpus"
CURATIONS = BENCH / "curations"
PY = sys.executable
FLOOR = BENCH / "servers" / "floor.py"
OPENAPI = BENCH / "servers" / "openapi.py"
BACKEND = BENCH / "backend.py"
EXAMPLE = ROOT / "curation.yaml"
TINY_SPEC = CORPUS / "OAI__OpenAPI-Specification@fad4c13" / "examples" / "v3.0" / "petstore.yaml"
BIG_SPECS = ("stripe", "github", "twilio", "digitalocean")


@dataclass
class Options:
    quick: bool = False
    repeat: int = 5
    calls: int = 2000
    duration: float = 4.0
    specs: tuple[str, ...] = BIG_SPECS
    workdir: Path = field(default_factory=lambda: Path("/tmp"))
    profile_dir: Path | None = None


# -- child processes --------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """A small, explicit environment for servers: nothing ambient leaks in."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update(PYTHONUNBUFFERED="1", INVENTORY_TOKEN="bench-token")
    env.update(extra)
    return env


def facade_cmd(*args: str) -> list[str]:
    return [PY, "-m", "facade", *args]


def spec_of(curation: Path) -> Path:
    """The spec file a curation names (resolved the way facade resolves it)."""
    import yaml

    data = yaml.safe_load(curation.read_text(encoding="utf-8"))
    return (curation.parent / data["spec"]).resolve()


def operation_labels(curation: Path) -> list[str]:
    """`METHOD /path` of each curated operation, to keep the same ones in FastMCP."""
    from facade.loading.loader import load

    return [f"{t.binding.method} {t.binding.path}"
            for t in load(curation, environ=child_env()).tools]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(proc: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g}s")


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def backend() -> Iterator[str]:
    """bench/backend.py on an ephemeral loopback port; yields its base URL."""
    proc = subprocess.Popen([PY, str(BACKEND)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=child_env())
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError("the benchmark backend did not start")
        yield url
    finally:
        stop(proc)


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()

    def field(name: str) -> int:
        match = re.search(rf"{name}:\s+(\d+)", status)
        return int(match.group(1)) if match else 0

    return field("VmRSS"), field("VmHWM")


def children() -> set[int]:
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            found.update(int(p) for p in (task / "children").read_text().split())
    return found


@dataclass
class Start:
    seconds: float
    tools: int
    rss_kb: int
    peak_kb: int
    list_bytes: int


async def _stdio_start(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> Start:
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    transport = StdioTransport(command=cmd[0], args=cmd[1:], env=env, cwd=str(cwd),
                               keep_alive=False, log_file=log)
    before = children()
    started = time.perf_counter()
    async with Client(transport, timeout=300) as client:
        tools = await client.list_tools()
        seconds = time.perf_counter() - started
        pids = children() - before
        rss, peak = rss_kb(pids.pop()) if len(pids) == 1 else (0, 0)
    listing = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]
    size = len(json.dumps({"tools": listing}, separators=(",", ":")).encode())
    return Start(seconds, len(tools), rss, peak, size)


def stdio_start(cmd: list[str], env: dict[str, str], workdir: Path, name: str) -> Start:
    """Process start → first `tools/list` answered over stdio, with the fastmcp client."""
    log = workdir / f"{name}.log"
    try:
        return asyncio.run(_stdio_start(cmd, env, ROOT, log))
    except Exception as exc:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        reason = tail[0] if tail else f"{type(exc).__name__}: {exc}"
        raise RuntimeError(reason[:160]) from None


# -- statistics and tables ----------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "-"
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.2f} ms"


def mb(kb: float) -> str:
    return f"{kb / 1024:,.0f} MB" if kb else "-"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
          notes: Sequence[str] = ()) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(parts) + " |"

    print(f"\n### {title}\n")
    print(line(headers))
    print("|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":")
                         for i, w in enumerate(widths)) + "|")
    for row in rows:
        print(line(row))
    for note in notes:
        print(f"\n{note}")
    sys.stdout.flush()
