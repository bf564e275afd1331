"""`facade serve --transport http --workers 2`, as an operator runs it: real processes on
127.0.0.1, a real MCP client, the example backend. Calls land on both workers (their audit
lines say which), `/metrics` sums them whichever worker answers, SIGTERM drains every
worker, a worker that dies takes the service down visibly, and each worker hot-reloads.
Every wait is bounded by a deadline or the child's life, never a fixed sleep."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import fastmcp
import httpx
import pytest

import facade
from fastmcp import Client as FastMCPClient

from log_support import audit, messages
from .conftest import (
    ROOT,
    check_item,
    check_tool_listing,
    child_env,
    serve_command,
)
from .test_auth_http import write_project
from .test_deploy_local import (  # noqa: F401  (fixtures)
    GRACEFUL,
    SlowHandler,
    Start,
    _call_in_background,
    _wait_for_line,
    slow_backend,
    start_facade,
)

pytestmark = pytest.mark.integration

PAGE = os.sysconf("SC_PAGE_SIZE")
CALLS_OK = 'facade_tool_calls_total{outcome="ok",tool="get_item"}'


def _audit(log: Path) -> list[dict[str, Any]]:
    return audit(log.read_text(errors="replace"))


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _workers_of(proc: subprocess.Popen[bytes], count: int) -> list[int]:
    """The pids of the parent's worker processes, once it has forked them all."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        pids = [int(pid) for task in Path(f"/proc/{proc.pid}/task").iterdir()
                for pid in (task / "children").read_text().split()]
        if len(pids) == count:
            return pids
        time.sleep(0.05)
    pytest.fail(f"the parent did not fork {count} workers")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _calls(url: str, clients: int, each: int) -> int:
    """`clients` MCP clients at once, each with its own connections, `each` calls apiece."""
    async def one() -> None:
        async with FastMCPClient(url) as client:
            for _ in range(each):
                check_item((await client.call_tool("get_item", {"sku": "SKU-1042"}
                                                   )).structured_content)

    await asyncio.gather(*(one() for _ in range(clients)))
    return clients * each


async def test_calls_spread_over_two_workers_and_metrics_add_up(
        start_facade: Start, backend_url: str) -> None:  # noqa: F811
    proc, base, log = start_facade(backend_url, "--workers", "2")
    async with FastMCPClient(base + "/mcp") as client:
        check_tool_listing(await client.list_tools())
    calls = 0
    for _ in range(5):  # the kernel hands connections to whichever worker accepts first
        calls += await _calls(base + "/mcp", clients=6, each=3)
        if {entry["worker"] for entry in _audit(log)} == {1, 2}:
            break
    audit = _audit(log)
    assert len(audit) == calls
    assert {entry["worker"] for entry in audit} == {1, 2}, "one worker took every call"
    assert all(entry["outcome"] == "ok" for entry in audit)

    for _ in range(6):  # fresh connections: whichever worker answers, the sums are whole
        samples = _samples(httpx.get(base + "/metrics", trust_env=False, timeout=10).text)
        assert samples[CALLS_OK] == calls
        assert samples['facade_tool_call_duration_seconds_count{tool="get_item"}'] == calls
        assert samples['facade_backend_responses_total{status="200",tool="get_item"}'] == calls
        assert samples['facade_tool_calls_in_flight{tool="get_item"}'] == 0
        assert samples['facade_tool_calls_total{outcome="ok",tool="list_items"}'] == 0
        assert samples["facade_requests_shed_total"] == 0
        breaker = {state: samples['facade_circuit_breaker_state{backend="'
                                  f'{backend_url}",facade_circuit_breaker_state="{state}"}}']
                   for state in ("closed", "half_open", "open")}
        assert breaker == {"closed": 2, "half_open": 0, "open": 0}  # two workers' breakers
        assert httpx.get(base + "/readyz", trust_env=False, timeout=10).text == "ready\n"
        # The replica's process series cover the parent and both workers: more than twice
        # the parent's own resident memory, whichever worker answered.
        parent_rss = int(Path(f"/proc/{proc.pid}/statm").read_text().split()[1]) * PAGE
        assert samples["process_resident_memory_bytes"] > 2 * parent_rss
        assert [k for k in samples if k.startswith("facade_build_info{")] == [
            f'facade_build_info{{fastmcp_version="{fastmcp.__version__}",'
            f'version="{facade.__version__}"}}']
    assert proc.poll() is None


def test_sigterm_drains_every_worker_then_the_parent_exits_0(
        start_facade: Start, slow_backend: str, tmp_path: Path) -> None:  # noqa: F811
    config = write_project(tmp_path / "project", GRACEFUL.format(grace=30))
    proc, base, log = start_facade(slow_backend, "--workers", "2", config=config)
    workers = _workers_of(proc, 2)
    thread, outcome = _call_in_background(base, "SKU-0000")

    proc.send_signal(signal.SIGTERM)
    _wait_for_line(proc, log, "draining: 1 request(s) in flight, up to 30s to finish")
    _wait_for_line(proc, log, "draining: 0 request(s) in flight, up to 30s to finish")
    for _ in range(4):  # both workers are draining: readiness is 503 whichever answers
        ready = httpx.get(base + "/readyz", trust_env=False, timeout=5)
        assert (ready.status_code, ready.text) == (503, "not ready: shutting down\n")
    assert proc.poll() is None  # the busy worker waits for its request

    SlowHandler.released.set()
    thread.join(15)
    result = outcome["response"].json()["result"]
    assert result["isError"] is False and result["structuredContent"]["sku"] == "SKU-1042"
    assert proc.wait(20) == 0  # well within the 30 s grace
    text = log.read_text(errors="replace")
    assert text.count("drained: every request finished") == 2
    assert text.count("Application shutdown complete.") == 2  # both closed their clients
    assert messages(text)[-1] == "stopped (2 workers)"
    assert "Traceback" not in text
    assert all(_gone(pid) for pid in workers)


def test_a_worker_that_dies_stops_the_service(start_facade: Start,
                                               backend_url: str) -> None:  # noqa: F811
    proc, base, log = start_facade(backend_url, "--workers", "2")
    workers = _workers_of(proc, 2)
    os.kill(workers[0], signal.SIGKILL)
    assert proc.wait(20) == 1
    text = log.read_text(errors="replace")
    died = re.search(r"worker (\d) \(pid (\d+)\) was killed by SIGKILL while "
                     r"serving; stopping the other worker\(s\)", text)
    assert died is not None, text
    assert int(died.group(2)) == workers[0]
    assert messages(text)[-1].endswith(f"curation.yaml: worker {died.group(1)} "
                                       f"(pid {workers[0]}) was killed by SIGKILL")
    assert "drained: every request finished" in text  # the other one drained
    assert "Traceback" not in text
    assert all(_gone(pid) for pid in workers)


async def test_each_worker_reloads(start_facade: Start, backend_url: str,
                                   tmp_path: Path) -> None:  # noqa: F811
    config = write_project(tmp_path / "project", (ROOT / "curation.yaml").read_text())
    proc, base, log = start_facade(backend_url, "--workers", "2", "--watch", config=config)
    _wait_for_line(proc, log, "watching ")
    deadline = time.monotonic() + 20
    while log.read_text(errors="replace").count("watching ") < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "a worker never watched"
        time.sleep(0.05)

    text = config.read_text()
    config.write_text(text.replace("  get_category:", "  category:"))
    while log.read_text(errors="replace").count("reloaded curation.yaml") < 2:
        assert time.monotonic() < deadline + 20 and proc.poll() is None, \
            "not every worker reloaded:\n" + log.read_text(errors="replace")
        time.sleep(0.05)
    assert log.read_text(errors="replace").count("added category, removed get_category") == 2
    for _ in range(6):  # new connections, whichever worker takes them
        async with FastMCPClient(base + "/mcp") as client:
            names = {tool.name for tool in await client.list_tools()}
        assert names == {"list_items", "get_item", "get_item_stock", "category"}


@pytest.mark.parametrize("how", ["option", "env"])
def test_workers_over_stdio_is_a_usage_error(how: str, backend_url: str) -> None:
    args = ["--workers", "2"] if how == "option" else []
    env = child_env(backend_url, **({"FACADE_WORKERS": "2"} if how == "env" else {}))
    done = subprocess.run(serve_command(*args), env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=30)
    assert done.returncode == 2
    stderr = done.stderr.decode()
    assert ("Error: --workers 2 needs --transport http: over stdio one client talks to one "
            "process") in stderr
    assert "Traceback" not in stderr and done.stdout == b""


def test_a_missing_credential_is_said_once(tmp_path: Path, backend_url: str) -> None:
    env = child_env(backend_url)
    del env["INVENTORY_TOKEN"]
    done = subprocess.run(serve_command("--transport", "http", "--port", "9", "--workers", "3"),
                          env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert stderr.count("INVENTORY_TOKEN") == 1, stderr
    assert messages(stderr)[-1].endswith("backend.auth.bearer_env: environment variable "
                                         "'INVENTORY_TOKEN' is not set")
    # Said before any worker started (none logged its start) and nothing was served.
    assert "Started server process" not in stderr and "serving" not in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("shared", [False, True], ids=["plain", "reuseport"])
def test_a_port_in_use_is_said_once(tmp_path: Path, backend_url: str, shared: bool) -> None:
    """Also when the port's listener shares it (`SO_REUSEPORT`, as another facade's
    workers do): the workers would otherwise silently split its connections with it."""
    with socket.socket() as taken:
        if shared:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(serve_command("--transport", "http", "--port", str(port),
                                            "--workers", "2"),
                              env=child_env(backend_url), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert messages(stderr)[-1].endswith(
        f"cannot listen on 127.0.0.1:{port}: Address already in use")
    assert "Started server process" not in stderr and "Traceback" not in stderr
