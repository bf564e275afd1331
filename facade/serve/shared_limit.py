"""Call time: the per-principal rate limit shared by every replica, in Redis.

With `server.rate_limit.store`, each principal's bucket lives in Redis, so two replicas
give a principal one `burst` and one `per_minute` between them, not one each. The check is
one atomic step, the Lua script `GCRA` (the generic cell rate algorithm, which is the token
bucket of `facade.serve.ratelimit` kept as a single timestamp), run with EVALSHA:

    TAT: the principal's "theoretical arrival time", µs on the Redis server's clock
    interval = 60 s / per_minute     one token's worth of time
    let through  ⇔  max(TAT, now) - now <= (burst - 1) · interval   (≥ 1 token left)
    then         TAT := max(TAT, now) + interval, kept until it is in the past (PX)

so a full bucket is the absent key, and nothing outlives its bucket's refill. Redis's own
clock is used: the replicas' clocks need not agree.

When the store cannot be reached, errs, or takes longer than `store_timeout`, the policy
`on_store_error` applies: `open` limits with this replica's in-memory bucket, `closed`
refuses calls. The change is logged once, and once again on recovery, and reported to the
observers (metrics). While it is down, one call probes it after a backoff (0.5 s doubling
up to 5 s); the others do not wait on it.

redis-py is an optional extra (`facade-mcp[redis]`), imported only when a store is set.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastmcp.exceptions import ToolError

from facade.call.events import CallRecord, Observer
from facade.call.scrub import register_secrets, scrub
from facade.serve.ratelimit import ANONYMOUS, RateLimiter, refusal
from facade.tools import RateLimit, RateLimitStore

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["GCRA", "RedisMissing", "SharedRateLimiter"]

logger = logging.getLogger("facade.ratelimit")
MIN_BACKOFF, MAX_BACKOFF = 0.5, 5.0

GCRA = """
if redis.replicate_commands then redis.replicate_commands() end  -- TIME before Redis 5
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - now - (burst - 1) * interval
if wait > 0 then return math.ceil(wait) end
tat = tat + interval
local ttl = math.max(1, math.ceil((tat - now) / 1000))  -- ms, as an integer for PX
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', string.format('%d', ttl))
return 0
"""


class RedisMissing(Exception):
    """A store is configured, and the Redis client (the `redis` extra) is not installed."""


class SharedRateLimiter(Observer):
    """The rate limit, checked in Redis; `report` hears when the store goes down or up."""

    def __init__(self, limit: RateLimit, store: RateLimitStore, name: str,
                 report: Observer | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`name` (the server's) makes the default key prefix, `facade:rl:<name>`.

        Raises:
            RedisMissing: redis-py is not installed.
        """
        if importlib.util.find_spec("redis") is None:
            raise RedisMissing("server.rate_limit.store needs the Redis client, which is not "
                               "installed: pip install 'facade-mcp[redis]'")
        from redis.exceptions import ConnectionError, RedisError
        from redis.exceptions import TimeoutError as RedisTimeout

        self.limit, self.store = limit, store
        self.local = RateLimiter(limit.per_minute, limit.burst)
        self.prefix = store.key_prefix or f"facade:rl:{name}"
        self.up = True  # until a check fails
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self._timeouts: tuple[type[BaseException], ...] = (RedisTimeout, TimeoutError)
        self._connection_errors: tuple[type[BaseException], ...] = (ConnectionError, OSError)
        self._interval = repr(60_000_000 / limit.per_minute)  # µs per token
        self._report = report or Observer()
        self._clock = clock
        self._redis: Redis | None = None
        self._script: AsyncScript | None = None
        self._retry_at = 0.0
        self._backoff = MIN_BACKOFF
        password = urlsplit(store.url).password
        if password:
            register_secrets([password])

    def key(self, principal: str) -> str:
        return f"{self.prefix}:{principal}"

    async def admit(self, record: CallRecord) -> None:
        principal = record.principal or ANONYMOUS
        if not self.up:
            if self._clock() < self._retry_at:
                return self._fallback(principal)
            # This call probes the store; the others fall back meanwhile, without waiting.
            self._retry_at = self._clock() + self._backoff
        try:
            async with asyncio.timeout(self.store.timeout):
                wait = await self._check(principal)
        except self._errors as exc:
            self._failed(exc)
            return self._fallback(principal)
        if not self.up:
            self._recovered()
        if wait > 0:
            raise refusal(self.limit.per_minute, self.limit.burst, wait / 1e6)
        return None

    async def _check(self, principal: str) -> int:
        """The store's verdict: 0 when granted, else the µs until a token is available."""
        if self._script is None:
            self._script = self._connect().register_script(GCRA)
        result: Any = await self._script(keys=[self.key(principal)],
                                         args=[self._interval, self.limit.burst])
        return int(result)

    def _connect(self) -> Redis:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries of its own and short socket timeouts: a call never waits on the store
        # longer than `store_timeout`; reconnecting is the next probe's job.
        timeout = self.store.timeout
        self._redis = Redis.from_url(self.store.url, socket_timeout=timeout,
                                     socket_connect_timeout=timeout,
                                     retry=Retry(NoBackoff(), 0), client_name="facade")
        return self._redis

    def _fallback(self, principal: str) -> None:
        if self.store.on_error == "open":
            self.local.check(principal)
            return
        retry = max(1, math.ceil(self._retry_at - self._clock()))
        raise ToolError("Rate limit cannot be checked: the rate limit store shared by this "
                        "service's replicas is unreachable, and calls are refused until it "
                        f"is back; retry in {retry} s")

    def _failed(self, exc: BaseException) -> None:
        reason = ("timeout" if isinstance(exc, self._timeouts) else
                  "connection" if isinstance(exc, self._connection_errors) else "error")
        self._report.rate_limit_store_failed(reason)
        if self.up:
            self.up, self._backoff = False, MIN_BACKOFF
            policy = ("limiting with this replica's own bucket" if self.store.on_error == "open"
                      else "refusing tool calls")
            detail = scrub(str(exc))[:200] or "no detail"
            logger.warning("the rate limit store %s is unreachable (%s: %s); %s "
                           "(on_store_error: %s) until it is back", self.store.shown,
                           type(exc).__name__, detail, policy, self.store.on_error)
            self._report.rate_limit_store_changed(False)
        else:
            self._backoff = min(MAX_BACKOFF, self._backoff * 2)
        self._retry_at = self._clock() + self._backoff

    def _recovered(self) -> None:
        self.up, self._backoff = True, MIN_BACKOFF
        logger.warning("the rate limit store %s is back; the limit is shared by the "
                       "replicas again", self.store.shown)
        self._report.rate_limit_store_changed(True)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
