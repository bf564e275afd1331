"""Serve time: how a serving process treats its heap and marks its event loop.

`serving()` wraps the serve loop of `facade serve` (stdio, HTTP, and each worker of
`--workers N`), once everything is loaded and built:

- **The start-up heap is frozen** (`gc.freeze()`). The tool definitions, the compiled
  schemas and every imported module live as long as the process; without a freeze, each
  full collection walks all of them again (about 120,000 objects: a 50-70 ms pause on the
  bench machine, which every call under way waits out). Frozen, a collection walks only
  what serving made. For `--workers N` the parent freezes before it forks, so a worker's
  collector does not write to (and so copy) the pages it shares with the others.
- **The young generation is collected every 10,000 net allocations**, not every 700. A
  tool call's objects are nearly all freed by reference counting when it ends; what
  outlives a young collection is the work of the calls still under way, promoted to older
  generations only to die there. Measured at 8 clients: at 700, collections took about
  150 µs of each call's CPU (5 %); at 10,000 with the freeze, 4 µs (one 3 ms young
  collection every ~700 calls, ~10 cyclic objects a call left to it).
- **uvicorn's loop is marked as asyncio for sniffio**, as `anyio.run` does: anyio and
  httpcore ask sniffio which library runs on each lock, cancel scope and task group, and
  uvicorn's `asyncio.run` sets nothing, so each question sniffed for a running task (about
  40 times a call).

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
