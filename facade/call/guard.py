"""Call time: the backend's concurrency guard, and how far a call got.

`BackendSlots` bounds the requests under way to one backend (`max_concurrency`). A slot is
held only while a request is sent and answered: not while a call is checked, backs off
between retries or has its answer shaped, so a busy façade (calls waiting on its own event
loop) is never mistaken for a busy backend. A call waits for a slot up to the pool timeout.

`Progress` follows one call through its attempts (via httpcore's trace hook), so that a
missed deadline can say what was missed: a slot, a connection, or the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

__all__ = ["BackendSlots", "Progress"]


class BackendSlots:
    """`size` slots, each held by one request to the backend while it is under way."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_flight = 0  # requests sent to the backend and not yet answered
        self._semaphore: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    async def acquire(self, patience: float) -> None:
        """Take a slot, to give back with `release()`; raises TimeoutError if none frees
        up within `patience` seconds."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore[0] is not loop:  # bound to a loop
            self._semaphore = (loop, asyncio.Semaphore(self.size))
        semaphore = self._semaphore[1]
        if semaphore.locked():
            async with asyncio.timeout(patience):
                await semaphore.acquire()
        else:
            await semaphore.acquire()  # free: returns at once
        self.in_flight += 1

    def release(self) -> None:
        """Give back the slot `acquire()` took."""
        assert self._semaphore is not None, "release() without acquire()"
        self.in_flight -= 1
        self._semaphore[1].release()


class Progress:
    """How far a call got: "queued" for a backend slot, "connecting" (from the first
    connection attempt until a request goes out on a connection) or "sent"."""

    __slots__ = ("stage",)

    def __init__(self) -> None:
        self.stage = "queued"

    async def trace(self, event: str, info: Mapping[str, object]) -> None:
        """httpcore's trace hook: a pool calls it at each step of a request."""
        if event == "connection.connect_tcp.started":
            self.stage = "connecting"
        elif event.endswith("send_request_headers.started"):
            self.stage = "sent"

    def slotted(self) -> None:
        """An attempt got its slot; without trace events (a given transport) that is as
        far as anyone can tell: sent."""
        if self.stage == "queued":
            self.stage = "sent"
