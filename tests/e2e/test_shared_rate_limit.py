"""End to end: one rate limit for several replicas, through a real redis-server.

Three `facade serve --transport http` children share one Redis (password-protected) and
the example backend: `open_a` and `open_b` with `on_store_error: open`, `closed` with
`closed`. The fastmcp client calls them over streamable HTTP as one principal: the burst
holds for all of them together. Then Redis is killed: the open replicas go on with their
own buckets, the closed one refuses calls; every replica stays ready, and /metrics shows
the store down. Redis comes back: so does the shared limit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from fastmcp import Client
from redis_store import RedisServer

from .conftest import ROOT, child_env, free_port, stop, wait_for_port

# Bounded, but above the default 60 s: the first test also starts Redis and three replicas,
# one after the other, and a busy machine slows each start-up.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PASSWORD = "redis-password-0123456789"
TOKENS = {"agent": "agent-token-0123456789abcdef", "steady": "steady-token-0123456789abcdef",
          "prober": "prober-token-0123456789abcdef"}
CURATION = """
    version: 1
    spec: specs/inventory.yaml
    server:
      name: inventory
      auth:
        tokens:
          - {{principal: agent, token_env: FACADE_TOKEN_AGENT}}
          - {{principal: steady, token_env: FACADE_TOKEN_STEADY}}
          - {{principal: prober, token_env: FACADE_TOKEN_PROBER}}
      rate_limit:
        per_minute: 1                 # no refill to speak of during the test
        burst: 4
        store: ${{RATE_LIMIT_STORE}}
        on_store_error: {policy}
    backend:
      base_url: ${{INVENTORY_URL}}
      auth: {{bearer_env: INVENTORY_TOKEN}}
    tools:
      get_category:
        operation: getCategory
        params:
          categoryId: {{rename: category_id}}
"""
EXCEEDED = "Rate limit exceeded: at most 1 tool calls per minute (bursts of 4) per client"
UNCHECKED = ("Rate limit cannot be checked: the rate limit store shared by this service's "
             "replicas is unreachable, and calls are refused until it is back; retry in ")
RECOVERY_POLLS = 60  # calls, 0.25 s apart: the probe backoff tops out at 5 s


@dataclass(frozen=True)
class Replica:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return self.base + "/mcp"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def metric(self, name: str) -> float | None:
        text = httpx.get(self.base + "/metrics", trust_env=False, timeout=10).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def ready(self) -> int:
        return httpx.get(self.base + "/readyz", trust_env=False, timeout=10).status_code


@dataclass(frozen=True)
class Cluster:
    store: RedisServer
    replicas: dict[str, Replica]


def write_project(directory: Path, policy: str) -> Path:
    (directory / "specs" / "components").mkdir(parents=True, exist_ok=True)
    for name in ["inventory.yaml", "components/parameters.yaml", "components/schemas.yaml"]:
        (directory / "specs" / name).write_text((ROOT / "specs" / name).read_text())
    path = directory / "curation.yaml"
    path.write_text(textwrap.dedent(CURATION.format(policy=policy)).lstrip("\n"))
    return path


@pytest.fixture(scope="module")
def cluster(backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    store = RedisServer(tmp_path_factory.mktemp("redis"), password=PASSWORD).start()
    env = child_env(backend_url, RATE_LIMIT_STORE=store.url,
                    **{f"FACADE_TOKEN_{p.upper()}": t for p, t in TOKENS.items()})
    started: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name, policy in [("open_a", "open"), ("open_b", "open"), ("closed", "closed")]:
            workdir = tmp_path_factory.mktemp(name)
            config, port, log = write_project(workdir, policy), free_port(), workdir / "log"
            with open(log, "wb") as out:
                started[name] = (subprocess.Popen(
                    [sys.executable, "-m", "facade", "serve", "--config", str(config),
                     "--transport", "http", "--port", str(port)], env=env, cwd=workdir,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT),
                    port, log)
            # One at a time: three start-ups at once on a busy machine can outlast the
            # start-up timeout of each.
            wait_for_port(*started[name])
        yield Cluster(store, {name: Replica(f"http://127.0.0.1:{port}", proc, log)
                              for name, (proc, port, log) in started.items()})
    finally:
        for proc, _, _ in started.values():
            stop(proc)
        store.stop()


async def call(replica: Replica, principal: str) -> str:
    """One tool call as `principal`: "ok", or the error the agent got."""
    async with Client(replica.url, auth=TOKENS[principal], timeout=20) as client:
        result = await client.call_tool("get_category", {"category_id": 1},
                                        raise_on_error=False)
    if not result.is_error:
        assert result.structured_content is not None
        assert result.structured_content["name"]  # a real answer from the backend
        return "ok"
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_one_burst_for_all_replicas(cluster: Cluster) -> None:
    a, b, closed = (cluster.replicas[n] for n in ("open_a", "open_b", "closed"))
    got = [await call(replica, "agent") for replica in (a, b, a, b, a, b, closed)]
    assert got[:4] == ["ok"] * 4  # the burst of 4, shared: not 4 on each replica
    for refused in got[4:]:
        assert refused.startswith(EXCEEDED + "; retry in "), refused
    # The bucket is one key per principal, under the server's name; no token is in Redis.
    inspect = redis.Redis.from_url(cluster.store.url)
    try:
        keys = inspect.keys("*")
        assert b"facade:rl:inventory:agent" in keys
        assert all(k.startswith(b"facade:rl:inventory:") for k in keys)
        dumped = b" ".join([*keys, *(inspect.get(k) or b"" for k in keys)])
        for token in TOKENS.values():
            assert token.encode() not in dumped
        assert 0 < inspect.pttl("facade:rl:inventory:agent") <= 4 * 60_000
    finally:
        inspect.close()
    for replica in (a, b, closed):
        assert replica.metric("facade_rate_limit_store_up") == 1.0


async def poll_until_back(replica: Replica, principal: str) -> None:
    for _ in range(RECOVERY_POLLS):
        await call(replica, principal)
        if replica.metric("facade_rate_limit_store_up") == 1.0:
            return
        await asyncio.sleep(0.25)
    pytest.fail(f"the store never came back for {replica.base}:\n{replica.log_text()}")


async def test_when_redis_dies_open_serves_closed_refuses_all_stay_ready(
        cluster: Cluster) -> None:
    a, b, closed = (cluster.replicas[n] for n in ("open_a", "open_b", "closed"))
    assert await call(a, "steady") == "ok"  # one token of the shared bucket
    cluster.store.kill()

    # Open: each replica limits with its own bucket (a full one: 4 more calls each).
    got_a = [await call(a, "steady") for _ in range(5)]
    assert got_a[:4] == ["ok"] * 4
    assert got_a[4].startswith(EXCEEDED), got_a[4]
    assert await call(b, "steady") == "ok"
    # Closed: refused, with a message that says why and when to retry.
    for _ in range(2):
        assert (await call(closed, "steady")).startswith(UNCHECKED)

    for replica in (a, b, closed):
        assert replica.ready() == 200  # the store's health is not readiness
        assert replica.metric("facade_rate_limit_store_up") == 0.0
        errors = replica.metric('facade_rate_limit_store_errors_total{reason="connection"}')
        assert errors is not None and errors >= 1
        log = replica.log_text()
        assert log.count("is unreachable") == 1, log  # once, not once per call
        assert PASSWORD not in log
    assert "redis://:***@127.0.0.1" in a.log_text()
    assert "limiting with this replica's own bucket (on_store_error: open)" in a.log_text()
    assert "refusing tool calls (on_store_error: closed)" in closed.log_text()

    # Redis comes back (empty: it kept nothing): the next probe finds it, the limit is
    # shared again, and each replica says so once.
    cluster.store.start()
    await poll_until_back(closed, "prober")
    assert await call(closed, "steady") == "ok"
    await poll_until_back(a, "agent")
    for replica in (a, closed):
        log = replica.log_text()
        assert log.count("is back; the limit is shared by the replicas again") == 1, log
        assert PASSWORD not in log
    # Shared again: what `closed` spent counts on `a`.
    spent = [await call(a, "steady") for _ in range(4)]
    assert spent[:3] == ["ok"] * 3 and spent[3].startswith(EXCEEDED), spent
    assert all(r.proc.poll() is None for r in (a, b, closed))  # none stopped meanwhile
