"""Serve time: what a slow or idle client may hold, below the ASGI app.

uvicorn's h11 protocol times out idle kept-alive connections, but not a client that
connects and then sends its request slowly, or never: 3,000 such connections held 3,000
file descriptors for as long as the clients liked (slowloris). `ReadDeadline` gives every
request a deadline to arrive whole, headers and body, counted from the connection's
opening or from the request's first byte; a client that misses it is disconnected.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ReadDeadline", "read_deadline"]

_RECEIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR, h11.SWITCHED_PROTOCOL)


class ReadDeadline(H11Protocol):
    """uvicorn's h11 protocol, with `request_timeout` seconds for each request to arrive."""

    request_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state in _RECEIVED:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.conn.their_state not in _RECEIVED and not self.transport.is_closing():
            self.transport.close()


def read_deadline(seconds: float) -> type[ReadDeadline]:
    """The protocol class to give `uvicorn.Config(http=…)`."""
    return type("ReadDeadline", (ReadDeadline,), {"request_timeout": seconds})
