"""The serving process's settings (facade.serve.process): the start-up heap frozen, the
young generation collected less often, uvicorn's loop marked for sniffio; and all of it
restored when serving ends."""

from __future__ import annotations

import asyncio
import gc

import anyio
import sniffio

from facade.serve.process import YOUNG_COLLECTION, serving


def test_serving_freezes_the_heap_and_collects_less_often_until_it_ends() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    made_at_start = type("StartUp", (), {})()  # alive when serving begins

    def collected(thing: object) -> bool:  # in a generation the collector walks
        return any(each is thing for each in gc.get_objects())

    assert collected(made_at_start)
    with serving(asyncio_run=True):
        assert gc.get_threshold() == (YOUNG_COLLECTION, *before[1:])
        assert gc.get_freeze_count() > 0
        assert not collected(made_at_start)  # frozen: no collection walks it again
        assert collected(type("MadeWhileServing", (), {})())
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert collected(made_at_start)


def test_uvicorns_loop_is_marked_as_asyncio_for_sniffio() -> None:
    """anyio and httpcore ask sniffio on every lock and cancel scope; under `asyncio.run`
    (uvicorn) the answer is now set, not sniffed, and it is gone after serving."""

    async def library() -> str | None:
        return sniffio.current_async_library_cvar.get()

    assert asyncio.run(library()) is None
    with serving(asyncio_run=True):
        assert asyncio.run(library()) == "asyncio"
    assert asyncio.run(library()) is None


def test_stdio_leaves_the_mark_to_anyio_run() -> None:
    """fastmcp serves stdio with `anyio.run`, which refuses to start over a mark."""

    async def library() -> str:
        return sniffio.current_async_library()

    with serving(asyncio_run=False):
        assert anyio.run(library) == "asyncio"
