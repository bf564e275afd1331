"""Serve time: how a serving process treats its heap and marks its event loop.

`serving()` wraps the serve loop of `facade serve` (stdio, HTTP, and each worker of
`--workers N`), once everything is loaded and built:

- **The start-up heap is frozen** (`gc.freeze()`). The spec's tool definitions, the
  compiled schemas and every imported module live as long as the process; without a
  freeze, each full collection walks all of them again (about 130,000 objects, 70 ms on
  the bench machine, a pause every call under way waits out). Frozen, a full collection
  walks only what serving made. For `--workers N` the parent freezes before it forks,
  so the collector of a worker does not write to, and so copy, the pages it shares.
- **The young generation collects every 10,000 allocations**, not every 700. A tool
  call allocates a few thousand objects, almost all freed by reference counting as the
  call ends; at 700 the collector ran several times per call and promoted the objects of
  the calls under way, which then cost a full collection to free. Cyclic garbage waits
  a little longer for its collection: at most a few MB.
- **uvicorn's loop is marked as asyncio for sniffio**, as `anyio.run` does: anyio and httpcore
  ask sniffio which library runs on each lock, cancel scope and task group, and
  uvicorn's `asyncio.run` sets nothing, so each question sniffed for a running task.

The figures these settings were chosen by are in bench/README ("The façade tax").
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import sniffio

__all__ = ["YOUNG_COLLECTION", "freeze_heap", "serving"]

YOUNG_COLLECTION = 10_000  # allocations between collections of the young generation


def freeze_heap() -> None:
    """Collect what start-up left in the young generations, then move every object alive
    now out of the collector's reach (`gc.unfreeze()` undoes it)."""
    gc.collect(1)  # cheap (under 1 ms), unlike a full collection of the start-up heap
    gc.freeze()


@contextlib.contextmanager
def serving(*, asyncio_run: bool) -> Iterator[None]:
    """The process settings for serving; restored when it ends (tests serve in-process).
    `asyncio_run`: the loop is started by `asyncio.run` (uvicorn), which tells sniffio
    nothing; `anyio.run` (fastmcp's stdio) marks its loop itself, and refuses a mark."""
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    freeze_heap()
    gc.set_threshold(YOUNG_COLLECTION, *thresholds[1:])
    token = sniffio.current_async_library_cvar.set("asyncio") if asyncio_run else None
    try:
        yield
    finally:
        if token is not None:
            sniffio.current_async_library_cvar.reset(token)
        gc.set_threshold(*thresholds)
        if not frozen:
            gc.unfreeze()
