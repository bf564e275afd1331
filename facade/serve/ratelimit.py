"""Call time: the per-principal rate limit of one replica, in memory.

`RateLimiter` is a token bucket per principal: `burst` calls at once, refilled at
`per_minute`. It is the limit when `server.rate_limit` names no `store`, and the fallback of
the shared limit (`facade.serve.shared_limit`) while its store cannot be reached under
`on_store_error: open`. Both refuse a call with the same `ToolError`, from `refusal()`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from fastmcp.exceptions import ToolError

from facade.call.events import CallRecord, Observer

__all__ = ["ANONYMOUS", "RateLimiter", "refusal"]

ANONYMOUS = "anonymous"  # the principal of calls without an access token (stdio, no auth)


def refusal(per_minute: float, burst: int, wait: float) -> ToolError:
    """The error an agent gets for a call over the limit, `wait` seconds before the next
    one would be let through."""
    return ToolError(f"Rate limit exceeded: at most {per_minute:g} tool calls per minute "
                     f"(bursts of {burst}) per client; retry in {max(1, round(wait))} s")


class RateLimiter(Observer):
    """A token bucket per principal: `burst` calls at once, refilled at `per_minute`.

    Buckets of principals that stopped calling are dropped once full again, and at most
    `max_principals` are kept (the least recently seen go first), so memory stays bounded.
    """

    def __init__(self, per_minute: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic,
                 max_principals: int = 10_000) -> None:
        self.per_minute, self.burst = per_minute, burst
        self._rate = per_minute / 60.0
        self._clock = clock
        self._max = max_principals
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def admit(self, record: CallRecord) -> None:
        self.check(record.principal or ANONYMOUS)

    def check(self, principal: str) -> None:
        """Spend one of `principal`'s tokens, or raise the refusal."""
        wait = self.take(principal)
        if wait is not None:
            raise refusal(self.per_minute, self.burst, wait)

    def take(self, principal: str) -> float | None:
        """Spend one token; None when granted, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.pop(principal, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self._rate)
        granted = tokens >= 1.0
        self._buckets[principal] = (tokens - 1.0 if granted else tokens, now)
        if len(self._buckets) > self._max:
            self._prune(now)
        return None if granted else (1.0 - tokens) / self._rate

    def _prune(self, now: float) -> None:
        for name, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self._rate >= self.burst:
                del self._buckets[name]
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
