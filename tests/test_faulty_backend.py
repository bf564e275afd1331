"""Faulty backends: slow, trickling, huge, compressed, flaky, rate limiting, resetting,
redirecting, answering the wrong type. Each call ends, bounded, with a clear error that
leaks neither the backend's body nor its credential."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from faulty_backend import SECRET_IN_ERROR, FaultyHandler
from hostile_support import ENV, TOKEN, client_for, error_of, write_facade

from facade.call.encoding import encode_request
from facade.call.events import CallRecord, Observer
from facade.call.resilience import CircuitBreaker, retry_after_seconds
from facade.loading.loader import load
from facade.call.upstream import Upstream
from facade.serve.server import build_server

hits = FaultyHandler.hits


@pytest.fixture
def url(faulty_url: str) -> str:
    return faulty_url


class Recorder(Observer):
    def __init__(self) -> None:
        self.finished: list[CallRecord] = []
        self.retries: list[str] = []
        self.breaker: list[str] = []
        self.statuses: list[int] = []

    def call_finished(self, record: CallRecord) -> None:
        self.finished.append(record)

    def retry(self, tool: str, reason: str) -> None:
        self.retries.append(reason)

    def breaker_changed(self, backend: str, state: str) -> None:
        self.breaker.append(state)

    def backend_response(self, tool: str, status: int, seconds: float) -> None:
        self.statuses.append(status)


async def behave(client: Client[Any], mode: str, **query: Any) -> Any:
    return await client.call_tool("behave", {"mode": mode, **query}, raise_on_error=False)


def observed(tmp_path: Path, url: str, **backend: Any) -> tuple[Client[Any], Recorder]:
    recorder = Recorder()
    facade = load(write_facade(tmp_path, url, **backend), environ=dict(ENV))
    return Client(build_server(facade, environ=ENV, observer=recorder)), recorder


async def test_a_slow_backend_hits_the_read_timeout_and_is_not_retried(
        tmp_path: Path, url: str) -> None:
    async with client_for(tmp_path, url, timeouts={"read": 0.3}) as client:
        result = await behave(client, "slow", delay=1.5, key="slow-1")
    assert "did not answer GET /b/{mode} in time (read timeout after 0.3s)" in \
        error_of(result)
    assert hits["slow:slow-1"] == 1  # only connect errors are retried


async def test_a_trickling_backend_is_cut_at_the_deadline(tmp_path: Path, url: str) -> None:
    # Every byte arrives well within the read timeout; only the call's deadline ends it.
    async with client_for(tmp_path, url, timeout=1, timeouts={"read": 0.5}) as client:
        result = await behave(client, "trickle", delay=4)
    assert "did not finish answering GET /b/{mode} within the 1 s deadline" in \
        error_of(result)


async def test_a_huge_answer_is_refused_past_the_cap(tmp_path: Path, url: str) -> None:
    async with client_for(tmp_path, url) as client:
        result = await behave(client, "huge", n=2 * 1024 * 1024)
    assert "is larger than 1,048,576 bytes; narrow the request" in error_of(result)


async def test_the_cap_is_configurable_per_tool(tmp_path: Path, url: str) -> None:
    tools = {"behave": {"operation": "behave", "max_response_bytes": 4 * 1024 * 1024}}
    async with client_for(tmp_path, url, tools=tools) as client:
        result = await behave(client, "huge", n=2 * 1024 * 1024)
    assert not result.is_error
    assert len(result.structured_content["result"]["pad"]) == 2 * 1024 * 1024


async def test_a_gzip_bomb_ends_with_bounded_memory(tmp_path: Path, url: str) -> None:
    async with client_for(tmp_path, url, max_response_bytes=256 * 1024) as client:
        tracemalloc.start()
        try:
            result = await behave(client, "gzipbomb")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert "is larger than 262,144 bytes" in error_of(result)
    # 20 MiB when inflated; inflating piece by piece keeps the peak near the cap.
    assert peak < 8 * 1024 * 1024, f"peak {peak:,} bytes"


async def test_503_then_200_is_retried_with_backoff(tmp_path: Path, url: str) -> None:
    client, recorder = observed(tmp_path, url)
    async with client:
        result = await behave(client, "flaky", fail=2, status=503, key="f1")
    assert result.structured_content["result"] == {"ok": True, "hit": 3}
    assert recorder.retries == ["503", "503"]
    assert recorder.statuses == [503, 503, 200]
    assert recorder.finished[-1].retries == 2 and recorder.finished[-1].outcome == "ok"


@pytest.mark.parametrize("status", [502, 504, 429])
async def test_retries_are_bounded(tmp_path: Path, url: str, status: int) -> None:
    async with client_for(tmp_path, url) as client:
        result = await behave(client, "flaky", fail=10, status=status, key=f"b{status}")
    assert f"The backend answered {status}" in error_of(result)
    assert hits[f"flaky:b{status}"] == 3  # one attempt and two retries


async def test_500_and_404_are_not_retried(tmp_path: Path, url: str) -> None:
    async with client_for(tmp_path, url) as client:
        for status in (500, 404):
            result = await behave(client, "flaky", fail=10, status=status, key=f"n{status}")
            assert f"The backend answered {status}" in error_of(result)
            assert hits[f"flaky:n{status}"] == 1


async def test_retry_after_within_the_deadline_is_honoured(tmp_path: Path, url: str) -> None:
    client, recorder = observed(tmp_path, url)
    async with client:
        result = await behave(client, "flaky", fail=1, status=429, after="1", key="ra")
    assert not result.is_error
    assert recorder.retries == ["429"]


@pytest.mark.parametrize("after", ["120", "date"])
async def test_retry_after_past_the_deadline_fails_at_once(tmp_path: Path, url: str,
                                                           after: str) -> None:
    async with client_for(tmp_path, url) as client:
        result = await behave(client, "ratelimit", after=after, key=f"rl-{after}")
    text = error_of(result)
    assert "The backend is rate limited for GET /b/{mode} (status 429); retry after" in text
    seconds = int(text.rsplit("retry after ", 1)[1].split()[0])
    assert 110 <= seconds <= 120
    assert hits[f"ratelimit:rl-{after}"] == 1


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    for bad in (None, "", "soon", "-3", "1.5"):
        assert retry_after_seconds(bad) is None


async def test_connect_errors_are_retried_then_reported(tmp_path: Path) -> None:
    import socket
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    client, recorder = observed(tmp_path, dead)
    async with client:
        result = await behave(client, "ok")
    assert "The backend for GET /b/{mode} is unreachable" in error_of(result)
    assert recorder.retries == ["connect", "connect"]
    assert recorder.finished[-1].outcome == "backend_error"


async def test_the_circuit_breaker_opens_fails_fast_probes_and_recovers(
        tmp_path: Path, url: str) -> None:
    client, recorder = observed(tmp_path, url, retries={"attempts": 0},
                                circuit_breaker={"failures": 3, "reset_after": 0.5})
    async with client:
        for i in range(5):  # 4xx other than 429 never trips it
            await behave(client, "status", status=404, key="cb404")
        assert recorder.breaker == []
        for i in range(3):
            await behave(client, "status", status=500, key="cb")
        assert recorder.breaker == ["open"]
        result = await behave(client, "status", status=500, key="cb")
        assert "circuit breaker open" in error_of(result)
        assert hits["status:cb"] == 3  # the backend was not touched
        assert recorder.finished[-1].outcome == "unavailable"
        await asyncio.sleep(0.6)
        result = await behave(client, "status", status=500, key="cb")  # the probe fails
        assert hits["status:cb"] == 4
        assert recorder.breaker == ["open", "half_open", "open"]
        await asyncio.sleep(0.6)
        result = await behave(client, "ok", key="cb-ok")  # the probe succeeds
        assert not result.is_error
        assert recorder.breaker == ["open", "half_open", "open", "half_open", "closed"]


async def test_answers_too_big_or_malformed_do_not_trip_the_breaker(
        tmp_path: Path, url: str) -> None:
    client, recorder = observed(tmp_path, url, retries={"attempts": 0},
                                max_response_bytes=1024,
                                circuit_breaker={"failures": 2, "reset_after": 30})
    async with client:
        for _ in range(3):
            assert "is larger than" in error_of(await behave(client, "huge", n=5000))
            assert "nested deeper" in error_of(await behave(client, "deep", n=100))
        assert recorder.breaker == []
        for _ in range(2):
            await behave(client, "reset")  # the connection breaks: a backend fault
        assert recorder.breaker == ["open"]


def test_half_open_lets_one_probe_through() -> None:
    now = [0.0]
    breaker = CircuitBreaker(1, 10, clock=lambda: now[0])
    breaker.record(False)
    assert breaker.state == "open" and breaker.retry_in() == 10
    now[0] = 10.0
    assert breaker.retry_in() is None  # the probe
    assert breaker.retry_in() == 10  # a second caller waits for the probe's outcome
    breaker.record(None)  # the probe was cancelled: someone else may probe
    assert breaker.retry_in() is None
    breaker.record(True)
    assert breaker.state == "closed"


async def test_calls_beyond_max_concurrency_wait_for_a_slot(tmp_path: Path, url: str) -> None:
    """Five calls, two slots: the other three wait (not fail) while two are answered."""
    client, recorder = observed(tmp_path, url, max_concurrency=2)
    async with client:
        results = await asyncio.gather(*[
            behave(client, "slow", delay=0.3, key="queue") for _ in range(5)])
    assert [r.is_error for r in results] == [False] * 5
    assert hits["slow:queue"] == 5
    assert {r.outcome for r in recorder.finished} == {"ok"}


async def test_busy_only_when_the_backend_keeps_every_slot_past_the_pool_timeout(
        tmp_path: Path, url: str) -> None:
    async with client_for(tmp_path, url, max_concurrency=2, timeouts={"pool": 0.2}) as client:
        results = await asyncio.gather(*[
            behave(client, "slow", delay=1.0, key="busy") for _ in range(5)])
    errors = [error_of(r) for r in results if r.is_error]
    assert len(errors) == 3
    assert all("is busy: 2 requests to it stayed under way for 0.2 s" in e for e in errors)
    assert hits["slow:busy"] == 2


async def test_a_call_backing_off_holds_no_backend_slot(tmp_path: Path, url: str) -> None:
    """The backend guard counts requests sent to the backend, not calls that wait on the
    façade (here: in a retry's backoff). One slot; call A backs off after a 503 while call
    B goes through; then A finishes."""
    facade = load(write_facade(tmp_path, url, max_concurrency=1), environ=dict(ENV))
    backing_off, release = asyncio.Event(), asyncio.Event()

    async def sleep(seconds: float) -> None:
        backing_off.set()
        await release.wait()

    upstream = Upstream(facade.backend, environ=ENV, sleep=sleep)
    tool = next(t for t in facade.tools if t.name == "behave")
    flaky = encode_request(tool.binding, {"mode": "flaky", "fail": 1, "key": "slot-a"})
    ok = encode_request(tool.binding, {"mode": "ok", "key": "slot-b"})
    try:
        first = asyncio.ensure_future(upstream.send(tool, flaky))
        await asyncio.wait_for(backing_off.wait(), 5)
        assert upstream.in_flight == 0
        assert (await upstream.send(tool, ok)).status == 200
        release.set()
        assert (await asyncio.wait_for(first, 5)).status == 200
    finally:
        await upstream.aclose()


def test_failures_of_calls_under_way_when_the_breaker_opened_do_not_delay_the_probe() -> None:
    now = [0.0]
    breaker = CircuitBreaker(2, 30, clock=lambda: now[0])
    tickets = [breaker.admit() for _ in range(5)]  # five calls let through while closed
    assert all(wait is None for wait, _ in tickets)
    breaker.record(False, tickets[0][1])
    breaker.record(False, tickets[1][1])
    assert breaker.state == "open" and breaker.retry_in() == 30
    now[0] = 10.0  # the other three fail later, while it is open
    for _, ticket in tickets[2:]:
        breaker.record(False, ticket)
    now[0] = 30.0
    wait, probe = breaker.admit()
    assert wait is None and probe.probe and breaker.state == "half_open"
    breaker.record(False, probe)  # the probe's failure counts: open again, for 30 s
    assert breaker.state == "open" and breaker.retry_in() == 30


async def test_a_backend_that_drops_connection_attempts_is_called_unreachable(
        tmp_path: Path) -> None:
    """A listener whose accept queue is full: the kernel drops further SYNs, so each
    connection attempt hangs until the connect timeout, and the deadline passes while
    connecting. The model is told the backend is unreachable, not to narrow its request."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):  # fill the accept queue (it holds backlog + 1)
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        client, recorder = observed(tmp_path, f"http://127.0.0.1:{port}", timeout=0.8,
                                    timeouts={"connect": 0.5})
        async with client:
            text = error_of(await behave(client, "ok"))
    assert text == ("The backend for GET /b/{mode} could not be reached within the 0.8 s "
                    "deadline (connection attempts timed out); retry later or tell the "
                    "operator")
    assert recorder.retries == ["connect"]
    assert recorder.finished[-1].outcome == "timeout"


@pytest.mark.parametrize(("mode", "message"), [
    ("reset", "The backend broke the connection during GET /b/{mode}"),
    ("redirect", "answered GET /b/{mode} with a 302 redirect, which facade does not follow"),
    ("html", "answered GET /b/{mode} with text/html, which facade does not pass on"),
    ("binary", "with application/octet-stream, which facade does not pass on"),
    ("deep", "is nested deeper than 64 levels"),
    ("many", "has more than 200,000 values; narrow the request"),
])
async def test_wrong_answers_are_clear_errors(tmp_path: Path, url: str, mode: str,
                                              message: str) -> None:
    async with client_for(tmp_path, url) as client:
        result = await behave(client, mode)
    assert message in error_of(result)


async def test_error_bodies_are_hidden_unless_an_excerpt_is_allowed(
        tmp_path: Path, url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with client_for(tmp_path, url) as client:
        text = error_of(await behave(client, "status", status=500))
    assert text == ("The backend answered 500 Internal Server Error for GET /b/{mode} "
                    "(tool behave): the backend failed; retry later.")

    async with client_for(tmp_path, url, error_excerpt=300) as client:
        text = error_of(await behave(client, "status", status=500))
    assert 'The backend said: {"error": "boom", "detail": "db-password=hunter2"' in text
    assert "internal_cost" not in text  # redacted by the curation's globs
    assert TOKEN not in text and '"auth": "Bearer ***"' in text  # the echoed credential

    async with client_for(tmp_path, url, error_excerpt=10) as client:
        text = error_of(await behave(client, "status", status=500))
    assert text.endswith('The backend said: {"error": …')
    assert SECRET_IN_ERROR not in text
    assert TOKEN not in caplog.text


async def test_no_credential_reaches_logs_or_results_whatever_fails(
        tmp_path: Path, url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with client_for(tmp_path, url, error_excerpt=2000, timeout=1,
                          timeouts={"read": 0.3}) as client:
        texts = []
        for mode, query in [("status", {"status": 401}), ("status", {"status": 503}),
                            ("reset", {}), ("slow", {"delay": 0.5}), ("redirect", {}),
                            ("echo", {})]:
            result = await behave(client, mode, **query)
            texts.append("\n".join(getattr(b, "text", "") for b in result.content))
    logging.getLogger("facade.test").error("token in a log line: %s", TOKEN)
    joined = "\n".join(texts)
    assert "Bearer ***" in joined  # the echo and the excerpt did carry it, masked
    assert TOKEN not in joined
    assert TOKEN not in caplog.text
    assert "token in a log line: ***" in caplog.text

