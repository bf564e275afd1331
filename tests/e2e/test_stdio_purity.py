"""In stdio mode nothing but JSON-RPC reaches stdout, whatever fails: a real
`facade serve` child over a misbehaving backend, driven with raw JSON-RPC lines."""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hostile_support import ENV, TOKEN, write_facade

pytestmark = pytest.mark.integration


@pytest.fixture
def url(faulty_url: str) -> str:
    return faulty_url


def _call(i: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}


def _converse(proc: subprocess.Popen[str], stdin: str, expected: set[int]
              ) -> tuple[list[str], str]:
    """Write every request, read stdout until each is answered (EOF on stdin would
    cancel what is in flight), then close stdin and collect the rest."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(stdin)
    proc.stdin.flush()
    out: list[str] = []
    answered: set[int] = set()
    deadline = time.monotonic() + 45
    while not expected <= answered and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            with contextlib.suppress(ValueError, AttributeError):
                answered.add(json.loads(line).get("id"))
    proc.stdin.close()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    out += proc.stdout.read().splitlines()
    return [line for line in out if line.strip()], proc.stderr.read()


def test_stdout_carries_only_json_rpc_whatever_fails(tmp_path: Path, url: str) -> None:
    config = write_facade(tmp_path, url, timeout=1, timeouts={"read": 0.5},
                          max_response_bytes=4096, circuit_breaker={"failures": 50})
    lines = [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        _call(1, "behave", {"mode": "reset"}),
        _call(2, "behave", {"mode": "status", "status": 500}),
        _call(3, "behave", {"mode": "huge", "n": 100000}),
        _call(4, "behave", {"mode": "slow", "delay": 2}),
        _call(5, "behave", {"mode": "html"}),
        _call(6, "behave", {"mode": "deep", "n": 5000}),
        _call(7, "get_item", {"id": "../admin"}),
        _call(8, "get_item", {"id": "x", "limit": "5&x=1"}),
        _call(9, "nope", {}),
        _call(10, "behave", {"mode": "redirect"}),
        _call(11, "behave", {"mode": "ok"}),
    ]
    stdin = "".join(json.dumps(m) + "\n" for m in lines) + "this is not json\n"
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", **ENV}
    with subprocess.Popen(
            [sys.executable, "-m", "facade", "serve", "--config", str(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env) as proc:
        out, stderr = _converse(proc, stdin, expected=set(range(12)))
    messages = [json.loads(line) for line in out]  # every stdout line is JSON
    assert all(m.get("jsonrpc") == "2.0" for m in messages), out
    by_id = {m["id"]: m for m in messages if "id" in m}
    assert set(range(12)) <= set(by_id), sorted(by_id)
    for i in range(1, 11):
        result = by_id[i].get("result") or {}
        assert result.get("isError") or "error" in by_id[i], by_id[i]
    assert by_id[11]["result"]["structuredContent"]["result"]["ok"] is True
    assert TOKEN not in "".join(out) and TOKEN not in stderr
