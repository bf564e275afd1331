"""The rate limit shared through Redis, one piece at a time: the curation's `store` keys as
`facade check` reports them, and `SharedRateLimiter` against a real redis-server (same
answers as the in-memory bucket, keys and TTLs, the failure policy and its recovery).

Two real replicas behind one Redis are in tests/e2e/test_shared_rate_limit.py."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from log_support import messages
import redis
from click.testing import CliRunner
from fastmcp.exceptions import ToolError
from redis_store import RedisServer

from facade import LoadError, load
from facade.call.events import CallRecord, Observer
from facade.cli import main
from facade.serve.metrics import Metrics
from facade.serve.observe import RateLimiter, observers_for
from facade.serve.shared_limit import SharedRateLimiter
from facade.tools import RateLimit, RateLimitStore

Write = Callable[..., Path]
HEAD = """\
version: 1
spec: specs/inventory.yaml
backend: {base_url: "http://127.0.0.1:9/v1"}
tools:
  get_category: {operation: getCategory}
"""
PASSWORD = "s3cret-redis-password"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), password=PASSWORD).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def inspect(store: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(store.url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reports(Observer):
    def __init__(self) -> None:
        self.events: list[object] = []

    def rate_limit_store_changed(self, up: bool) -> None:
        self.events.append(up)

    def rate_limit_store_failed(self, reason: str) -> None:
        self.events.append(reason)


def call(principal: str | None = "ops") -> CallRecord:
    return CallRecord(tool="t", principal=principal)


async def outcomes(limiter: RateLimiter | SharedRateLimiter, n: int, principal: str = "ops"
                   ) -> list[str]:
    """What each of `n` calls got: "ok", or the refusal's message."""
    got = []
    for _ in range(n):
        try:
            await limiter.admit(call(principal))
            got.append("ok")
        except ToolError as exc:
            got.append(str(exc))
    return got


# --- the curation's keys, as `facade check` reports them --------------------------------

def check(path: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", "--config", str(path)], env=env or {})
    return result.exit_code, result.output


def test_a_store_url_that_is_not_redis_is_a_load_error_with_its_place(
        write_curation: Write) -> None:
    path = write_curation(HEAD + "server:\n  rate_limit:\n    per_minute: 60\n"
                          "    store: http://:hunter2-password@cache.internal:6379/0\n")
    code, output = check(path)
    assert code == 1
    assert output.splitlines()[0] == (
        f"{path}:9:12: server.rate_limit.store: 'http://:***@cache.internal:6379/0' is not a "
        "redis:// or rediss:// URL (e.g. redis://redis.example.internal:6379/0, or rediss:// "
        "for TLS; a password goes in the user info: redis://:${REDIS_PASSWORD}@host:6379/0)")
    assert "hunter2" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize(("url", "why"), [
    ("redis:///0", "has no host"),
    ("redis://cache:99999/0", "is not a URL with a valid host and port"),
    ("redis://cache:6379/zero", "names a database that is not a number"),
    ("redis://cache:6379/0?socket_timeout=30", "has a query string or fragment"),
    ("unix:///run/redis.sock", "is not a redis:// or rediss:// URL"),
], ids=["no-host", "bad-port", "bad-db", "query", "unix"])
def test_bad_store_urls(write_curation: Write, url: str, why: str) -> None:
    path = write_curation(HEAD + f"server: {{rate_limit: {{per_minute: 6, store: '{url}'}}}}\n")
    with pytest.raises(LoadError) as info:
        load(path, environ={})
    [problem] = info.value.problems
    assert problem.path == ("server", "rate_limit", "store")
    assert problem.message.startswith(f"{url!r} {why}")


def test_the_store_is_expanded_and_an_empty_one_means_in_memory(write_curation: Write
                                                                ) -> None:
    path = write_curation(HEAD + """\
server:
  rate_limit:
    per_minute: 60
    burst: 5
    store: ${RATE_LIMIT_STORE:-}
    on_store_error: closed
    key_prefix: inventory-prod
""")
    shared = load(path, environ={"RATE_LIMIT_STORE": "rediss://:pw-0123@cache:6380/2"})
    assert shared.serving.rate_limit == RateLimit(60, 5, RateLimitStore(
        "rediss://:pw-0123@cache:6380/2", "inventory-prod", 0.25, "closed"))
    assert "pw-0123" not in repr(shared.serving)  # the URL is not in reprs
    assert shared.serving.rate_limit.store is not None
    assert shared.serving.rate_limit.store.shown == "rediss://:***@cache:6380/2"
    assert load(path, environ={}).serving.rate_limit == RateLimit(60, 5)


def test_an_unset_variable_in_the_store_is_reported(write_curation: Write) -> None:
    path = write_curation(HEAD + "server: {rate_limit: {per_minute: 6, "
                          "store: 'redis://${REDIS_HOST}:6379/0'}}\n")
    code, output = check(path)
    assert code == 1
    assert "server.rate_limit.store: environment variable 'REDIS_HOST' is not set" in output


def test_bad_policy_and_timeout_are_shape_errors(write_curation: Write) -> None:
    path = write_curation(HEAD + "server: {rate_limit: {per_minute: 6, store: "
                          "'redis://c/0', on_store_error: ignore, store_timeout: 30}}\n")
    code, output = check(path)
    assert code == 1
    assert "server.rate_limit.on_store_error: Input should be 'open' or 'closed'" in output
    assert "server.rate_limit.store_timeout: Input should be less than or equal to 5" in output


# --- against a real redis-server --------------------------------------------------------

def limiter_for(url: str, per_minute: float = 2, burst: int = 3, on_error: str = "open",
                **kw: object) -> SharedRateLimiter:
    store = RateLimitStore(url, None, 0.5, on_error)  # type: ignore[arg-type]
    return SharedRateLimiter(RateLimit(per_minute, burst, store), store, "inventory",
                             **kw)  # type: ignore[arg-type]


async def test_the_shared_limit_answers_as_the_in_memory_bucket(
        store: RedisServer, inspect: redis.Redis) -> None:
    shared = limiter_for(store.url)
    try:
        memory = RateLimiter(per_minute=2, burst=3)
        expected = await outcomes(memory, 5)
        assert expected[:3] == ["ok"] * 3
        assert expected[3].startswith("Rate limit exceeded: at most 2 tool calls per minute "
                                      "(bursts of 3) per client; retry in 30 s")
        assert await outcomes(shared, 5) == expected
        assert await outcomes(shared, 1, principal="other") == ["ok"]  # per principal
        await shared.admit(call(None))  # no principal: "anonymous", its own bucket
    finally:
        await shared.aclose()
    # One key per principal under the default prefix; its TTL ends when its bucket is
    # full again (3 tokens spent at 30 s each: at most 90 s), so nothing accumulates.
    assert sorted(inspect.keys("*")) == [b"facade:rl:inventory:anonymous",
                                         b"facade:rl:inventory:ops",
                                         b"facade:rl:inventory:other"]
    assert 60_000 < inspect.pttl("facade:rl:inventory:ops") <= 90_000
    assert 0 < inspect.pttl("facade:rl:inventory:other") <= 30_000


async def test_two_limiters_on_one_store_share_one_bucket(store: RedisServer,
                                                          inspect: redis.Redis) -> None:
    first, second = limiter_for(store.url, burst=4), limiter_for(store.url, burst=4)
    try:
        got = [*(await outcomes(first, 2)), *(await outcomes(second, 2)),
               *(await outcomes(first, 1)), *(await outcomes(second, 1))]
    finally:
        await first.aclose()
        await second.aclose()
    assert got[:4] == ["ok"] * 4
    assert all(g.startswith("Rate limit exceeded") for g in got[4:])


async def test_tokens_come_back_at_the_rate(store: RedisServer, inspect: redis.Redis) -> None:
    import asyncio

    shared = limiter_for(store.url, per_minute=600, burst=1)  # a token every 0.1 s
    try:
        await shared.admit(call())
        with pytest.raises(ToolError, match="retry in 1 s"):
            await shared.admit(call())
        await asyncio.sleep(0.15)  # longer than one interval: a token is back
        await shared.admit(call())
    finally:
        await shared.aclose()


async def test_a_rate_finer_than_the_clock_still_stores_a_valid_expiry(
        store: RedisServer, inspect: redis.Redis) -> None:
    """At a billion calls a minute a token is 0.06 µs, below the resolution of a µs
    timestamp as a double: the key must still get an expiry Redis accepts (at least 1 ms),
    not fall back on a store error."""
    reports = Reports()
    shared = limiter_for(store.url, per_minute=1e9, burst=10**9, report=reports)
    try:
        assert await outcomes(shared, 5) == ["ok"] * 5
    finally:
        await shared.aclose()
    assert reports.events == []  # before the fix: "error" (SET … PX 0), and a fallback


async def test_a_store_that_cannot_be_reached_falls_back_open_and_recovers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(tmp_path)  # its port is free: nothing listens yet
    clock, reports = Clock(), Reports()
    shared = limiter_for(server.url, burst=2, clock=clock, report=reports)
    try:
        with caplog.at_level(logging.WARNING, logger="facade.ratelimit"):
            got = await outcomes(shared, 3)
            # Open: this replica's own bucket applies, with the same words.
            assert got[:2] == ["ok", "ok"]
            assert got[2].startswith("Rate limit exceeded: at most 2 tool calls per minute")
            assert reports.events == ["connection", False]  # the probe's failure only
            down = [r.getMessage() for r in caplog.records]
            assert len(down) == 1
            assert down[0].startswith(f"the rate limit store {server.url} is "
                                      "unreachable (ConnectionError: ")
            assert down[0].endswith("limiting with this replica's own bucket "
                                    "(on_store_error: open) until it is back")
            server.start()
            await shared.admit(call("fresh"))  # still within the backoff: not asked yet
            assert reports.events == ["connection", False]
            clock.now += 0.6  # past the first backoff (0.5 s): the next call probes
            await shared.admit(call("fresh"))
            assert reports.events == ["connection", False, True]
            assert caplog.records[-1].getMessage() == (
                f"the rate limit store {server.url} is back; the limit is shared "
                "by the replicas again")
            assert shared.up
    finally:
        await shared.aclose()
        server.stop()


async def test_closed_refuses_while_the_store_is_down(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    clock, metrics = Clock(), Metrics(rate_limit_store=True)
    shared = limiter_for(server.url, on_error="closed", clock=clock, report=metrics)
    message = (r"^Rate limit cannot be checked: the rate limit store shared by this "
               r"service's replicas is unreachable, and calls are refused until it is "
               r"back; retry in 1 s$")
    try:
        for _ in range(3):
            with pytest.raises(ToolError, match=message):
                await shared.admit(call())
        text = metrics.render().decode()
        assert "facade_rate_limit_store_up 0.0" in text
        assert 'facade_rate_limit_store_errors_total{reason="connection"} 1.0' in text
        clock.now += 0.6
        with pytest.raises(ToolError, match=message):  # a second probe, still down
            await shared.admit(call())
        assert 'facade_rate_limit_store_errors_total{reason="connection"} 2.0' in \
            metrics.render().decode()
    finally:
        await shared.aclose()


async def test_a_hung_store_times_out_instead_of_stalling_calls(store: RedisServer,
                                                               inspect: redis.Redis) -> None:
    reports = Reports()
    shared = limiter_for(store.url, burst=5, report=reports)
    try:
        await shared.admit(call())  # connected, up
        store.pause()
        try:
            assert await outcomes(shared, 2) == ["ok", "ok"]  # the local bucket, at once
        finally:
            store.resume()
        assert reports.events == ["timeout", False]
    finally:
        await shared.aclose()


def test_observers_for_builds_the_shared_limiter_and_metrics_see_it(
        write_curation: Write) -> None:
    path = write_curation(HEAD + "server: {rate_limit: {per_minute: 6, store: "
                          "'redis://127.0.0.1:9/0', key_prefix: 'x:y'}}\n")
    metrics = Metrics(rate_limit_store=True)
    chain = observers_for(load(path, environ={}), metrics).observers
    assert [type(o).__name__ for o in chain] == ["SharedRateLimiter", "Metrics", "BreakerLog",
                                                     "AuditLog"]
    limiter = chain[0]
    assert isinstance(limiter, SharedRateLimiter)
    assert limiter.key("ops") == "x:y:ops"
    assert "facade_rate_limit_store_up 1.0" in metrics.render().decode()
    assert "facade_rate_limit_store_up" not in Metrics().render().decode()


def test_serve_without_the_redis_extra_says_how_to_get_it(
        write_curation: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "redis" else real(name, *a))
    path = write_curation(HEAD + "server: {rate_limit: {per_minute: 6, "
                          "store: 'redis://127.0.0.1:9/0'}}\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(path)], env={})
    assert result.exit_code == 1
    assert messages(result.output) == [
        f"{path}: server.rate_limit.store needs the Redis client, which is not installed: "
        "pip install 'facade-mcp[redis]'"]
