"""Call time: the pure parts of the retry policy and the circuit breaker (no I/O).

`Upstream` (facade.call.upstream) drives them; they are kept apart so their state machines can
be read, and tested with a fake clock, on their own.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CircuitBreaker", "Ticket", "retry_after_seconds"]


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class CircuitBreaker:
    """Closed → (``failures`` failed calls in a row) → open → (``reset_after``) → half open:
    one probe call; its success closes the breaker, its failure opens it again.

    Only failures of calls let through while it was closed, and the probe's, count: calls
    already under way when it opened end later, and their failures say nothing new about a
    backend already judged down (counting them would push the probe back past
    `reset_after`). `admit()` hands each call the breaker's current epoch for `record()`.
    """

    def __init__(self, failures: int, reset_after: float, *,
                 on_change: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.reset_after = failures, reset_after
        self._on_change, self._clock = on_change, clock
        self._count, self._opened_at, self._probing = 0, 0.0, False
        self._epoch = 0  # moves on each time the breaker opens
        self.state = "closed"

    def _move(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)

    def retry_in(self) -> float | None:
        """None when a call may go ahead (and is then the probe, if half open);
        otherwise the seconds until the next probe."""
        if self.state == "open":
            wait = self._opened_at + self.reset_after - self._clock()
            if wait > 0:
                return wait
            self._move("half_open")
        if self.state == "half_open":
            if self._probing:
                return self.reset_after
            self._probing = True
        return None

    def refresh(self) -> str:
        """The state as of now: an open breaker whose `reset_after` has passed is half
        open (its next call is the probe), whether or not a call has come since."""
        if self.state == "open" and self._clock() >= self._opened_at + self.reset_after:
            self._move("half_open")
        return self.state

    def admit(self) -> tuple[float | None, Ticket]:
        """`retry_in()`, plus the ticket to pass to `record()` if the call goes ahead."""
        probe = self.state != "closed"
        wait = self.retry_in()
        return wait, Ticket(self._epoch, probe and wait is None)

    def record(self, success: bool | None, ticket: Ticket | None = None) -> None:
        """The outcome of a call let through; None (cancelled) only ends a probe.

        With the call's `ticket` (from `admit()`), a failure counts only if the call was
        let through while closed in the current epoch, or was the probe."""
        if ticket is None or ticket.probe:
            self._probing = False
        if success is None:
            return
        if success:
            self._count = 0
            self._move("closed")
            return
        if ticket is not None and not ticket.probe and (
                ticket.epoch != self._epoch or self.state != "closed"):
            return  # under way when the breaker opened: already judged
        self._count += 1
        if self.state == "half_open" or self._count >= self.failures:
            self._opened_at = self._clock()
            self._epoch += 1
            self._count = 0
            self._move("open")


@dataclass(frozen=True)
class Ticket:
    """What the breaker knew when it let a call through."""

    epoch: int
    probe: bool
