"""One log stream on stderr, as an operator reads it: real `python -m facade serve`
children (stdio driven by fastmcp's client, HTTP by httpx) with their stderr captured, in
each `--log-format` and at several `--log-level`s."""

from __future__ import annotations

import re
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from log_support import audit, records

from .conftest import (
    NOT_FOUND_ITEM,
    TOKEN,
    check_item,
    child_env,
    error_text,
    free_port,
    serve_command,
    stop,
    wait_for_port,
)

pytestmark = pytest.mark.integration

# What fastmcp's Rich banner and handlers would put there.
BANNER = ("FastMCP", "╭", "│", "Starting MCP server 'inventory' with transport 'stdio'\n")
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|"
                       r"CRITICAL) +[\w.]+: ")


@asynccontextmanager
async def serving(backend_url: str, stderr: Path, *args: str
                  ) -> AsyncIterator[Client[StdioTransport]]:
    """`facade serve` over stdio with these options; its stderr goes to `stderr`."""
    command = serve_command(*args)
    transport = StdioTransport(command=command[0], args=command[1:],
                               env=child_env(backend_url), cwd=str(stderr.parent),
                               keep_alive=False, log_file=stderr)
    async with Client(transport) as client:
        yield client


async def one_good_and_two_bad_calls(client: Client[StdioTransport]) -> None:
    """A call that works, one the backend answers 404, one with a bad argument: the
    client gets each answer, so stdout carried JSON-RPC and nothing else."""
    result = await client.call_tool("get_item", {"sku": "SKU-1042"})
    check_item(result.structured_content)
    missing = await client.call_tool("get_item", {"sku": "SKU-9999"}, raise_on_error=False)
    assert error_text(missing) == NOT_FOUND_ITEM
    bad = await client.call_tool("get_item", {"sku": "../etc"}, raise_on_error=False)
    assert error_text(bad).startswith("Invalid arguments for get_item: sku: ")


async def test_json_every_line_is_a_record_and_expected_errors_are_not_errors(
        backend_url: str, tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    async with serving(backend_url, stderr, "--log-format", "json") as client:
        await one_good_and_two_bad_calls(client)
    text = stderr.read_text()
    found = records(text)  # every line is one JSON object: ts, level, logger, message, …
    assert not any(mark in text for mark in BANNER)
    assert [r for r in found if r["level"] in ("error", "critical")] == []
    assert "Error calling tool" not in text and "Traceback" not in text
    calls = audit(text)
    assert [(c["tool"], c["outcome"], c["backend_status"]) for c in calls] == [
        ("get_item", "ok", 200), ("get_item", "backend_error", 404),
        ("get_item", "invalid_arguments", None)]
    assert all(c["event"] == "tool_call" and c["principal"] == "anonymous" and
               re.fullmatch(r"[0-9a-f]{32}", c["request_id"]) for c in calls)
    started = [r for r in found if r["logger"].startswith("fastmcp")]
    assert [r["message"] for r in started] == [
        "Starting MCP server 'inventory' with transport 'stdio'"]
    assert TOKEN not in text


async def test_text_is_one_line_per_record_for_people(backend_url: str,
                                                      tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    async with serving(backend_url, stderr, "--log-format", "text") as client:
        await one_good_and_two_bad_calls(client)
    lines = stderr.read_text().splitlines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), lines
    assert not any(line.startswith("{") or "Error calling tool" in line for line in lines)
    tool_calls = [line for line in lines if " INFO    facade.audit: tool_call " in line]
    assert len(tool_calls) == 3
    assert " tool=get_item outcome=backend_error backend_status=404 " in tool_calls[1]


async def test_warning_level_hides_info_but_keeps_the_audit_log(backend_url: str,
                                                                 tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    async with serving(backend_url, stderr, "--log-level", "warning") as client:
        await one_good_and_two_bad_calls(client)  # json: stderr is a file, not a terminal
    found = records(stderr.read_text())
    assert {(r["logger"], r["level"]) for r in found} == {("facade.audit", "info")}
    assert len(found) == 3


async def test_an_outage_logs_one_line_per_call_and_no_errors(tmp_path: Path) -> None:
    """The backend is down for 50 calls: 50 audit lines, one line when the circuit
    breaker opens (after 5 failures, in the bundled curation), and no ERROR line."""
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    stderr = tmp_path / "stderr.log"
    calls = 50
    async with serving(down, stderr) as client:
        for _ in range(calls):
            result = await client.call_tool("get_item", {"sku": "SKU-1042"},
                                            raise_on_error=False)
            assert result.is_error
    found = records(stderr.read_text())
    assert Counter(c["outcome"] for c in audit(stderr.read_text())) == {
        "backend_error": 5, "unavailable": calls - 5}
    assert [r for r in found if r["level"] in ("error", "critical")] == []
    breaker = [r for r in found if r["logger"] == "facade.breaker"]
    assert [(r["level"], r["state"]) for r in breaker] == [("warning", "open")]
    assert len(found) == calls + 2  # and fastmcp's start line


def test_http_uvicorn_lines_are_records_too(backend_url: str, tmp_path: Path) -> None:
    """Over HTTP at debug: uvicorn's start-up and access lines, the audit line and the
    lifecycle lines, all JSON; the access line's parts are fields."""
    log, port = tmp_path / "server.log", free_port()
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            serve_command("--transport", "http", "--port", str(port), "--log-level", "debug"),
            env=child_env(backend_url), cwd=tmp_path, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=err)
    try:
        wait_for_port(proc, port, log)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/healthz", trust_env=False).status_code == 200
        called = httpx.post(base + "/mcp", trust_env=False, headers={
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25"}, json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_item", "arguments": {"sku": "SKU-9999"}}})
        assert called.json()["result"]["isError"] is True
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert (proc.returncode, out) == (0, b"")  # stdout: nothing, ever
    finally:
        stop(proc)
        assert proc.stdout is not None
        proc.stdout.close()
    text = log.read_text()
    found = records(text)
    by_logger = Counter(r["logger"] for r in found)
    assert by_logger["uvicorn.error"] >= 3 and by_logger["facade.serve"] >= 3
    assert "Application startup complete." in [r["message"] for r in found]
    access = [r for r in found if r["logger"] == "uvicorn.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("GET", "/healthz", 200), ("POST", "/mcp", 200)]
    [call] = audit(text)
    assert (call["outcome"], call["backend_status"]) == ("backend_error", 404)
    # At debug fastmcp says the tool failed, at debug: no ERROR line, no traceback.
    assert [r for r in found if r["level"] in ("error", "critical")] == []
    assert [r["level"] for r in found if r["message"] == "Error calling tool 'get_item'"] \
        == ["debug"]
    assert "Traceback" not in text and TOKEN not in text


def test_http_at_info_has_no_access_log(backend_url: str, tmp_path: Path) -> None:
    log, port = tmp_path / "server.log", free_port()
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            serve_command("--transport", "http", "--port", str(port), "--log-format", "text"),
            env=child_env(backend_url, FACADE_LOG_FORMAT="json"), cwd=tmp_path,
            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        wait_for_port(proc, port, log)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False).is_success
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        stop(proc)
    lines = log.read_text().splitlines()
    assert all(TEXT_LINE.match(line) for line in lines), lines  # the option beats the env
    assert any(" INFO    uvicorn.error: Application startup complete." in x for x in lines)
    assert not any("uvicorn.access" in line for line in lines)
