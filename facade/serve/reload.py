"""`facade serve --watch`: re-read the curation and its spec when they change.

A valid new version replaces the curated tools, resources and prompts in one step (no
request sees half of each), and every connected client gets `notifications/tools/
list_changed` (and the resource and prompt equivalents): on its session for a client of the
handshake era, on its `subscriptions/listen` streams for a 2026-07-28 one
(`facade.serve.listen`). An invalid one is rejected with
the same lines `facade check` prints, and the last good version keeps serving. Changes to
`backend:` or `server:` need a restart (clients, credentials and listeners are built once);
such a version is rejected with a message saying so.

Files are polled (size and modification time) every `interval` seconds: no extra
dependency, and it works on network and container file systems where inotify does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
from fastmcp import FastMCP
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext

from facade.call.events import Observer
from facade.errors import LoadError
from facade.loading.loader import compile_facade
from facade.serve.components import Upstreams, add_components, remove_components
from facade.serve.listen import ListChanges
from facade.tools import Facade

__all__ = ["Reloader"]

logger = logging.getLogger("facade.reload")
Snapshot = dict[Path, tuple[int, int] | None]


class _Sessions(Middleware):
    """Remembers the sessions of connected clients, to notify them after a reload. The
    session objects are not kept alive elsewhere, so they are held here, at most `limit`
    of them (the most recent), and dropped when a notification to them fails."""

    def __init__(self, limit: int = 1000) -> None:
        self.sessions: OrderedDict[int, Any] = OrderedDict()
        self.limit = limit

    async def on_message(self, context: MiddlewareContext[Any],
                         call_next: CallNext[Any, Any]) -> Any:
        ctx = context.fastmcp_context
        if ctx is not None:
            with contextlib.suppress(RuntimeError):  # no session outside a request
                session = ctx.session
                # One object per request, around one connection per client: key by that.
                key = id(getattr(session, "_connection", session))
                self.sessions[key] = session
                self.sessions.move_to_end(key)
                while len(self.sessions) > self.limit:
                    self.sessions.popitem(last=False)
        return await call_next(context)


class Reloader:
    def __init__(self, server: FastMCP[Any], config: Path, facade: Facade,
                 upstreams: Upstreams, observer: Observer, *, interval: float = 1.0
                 ) -> None:
        self.server, self.config, self.facade = server, Path(config), facade
        self.upstreams, self.observer, self.interval = upstreams, observer, interval
        self.on_swap: list[Callable[[Facade], None]] = []
        self._sessions = _Sessions()
        server.add_middleware(self._sessions)
        self.listeners = ListChanges(server, facade.serving.limits.max_listeners)
        self._files: list[Path] = [self.config]
        self._seen: Snapshot = {}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Watch while the server runs."""
        self._watch_sources(self.facade.sources)
        logger.info("watching %d file(s) for changes", len(self._files))
        # A plain task, not a task group: FastMCP may leave its lifespan from another task
        # than the one that entered it, which a cancel scope does not allow.
        task = asyncio.get_running_loop().create_task(self._watch())
        try:
            yield
        finally:
            self.listeners.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _watch_sources(self, sources: tuple[Path, ...]) -> None:
        """Watch the curation and these spec files, from their state now."""
        self._files = [self.config, *sources]
        self._seen = _snapshot(self._files)

    async def _watch(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            now = _snapshot(self._files)
            if now != self._seen:
                self._seen = now
                await self.reload()

    async def reload(self) -> bool:
        """Load the files as they are now; swap the new version in if it is valid."""
        name = self.config.name
        try:
            new, compiled = await anyio.to_thread.run_sync(compile_facade, self.config)
        except LoadError as exc:
            logger.warning("%s changed; the new version has %d problem(s), still serving the "
                           "last good one:", name, len(exc.problems))
            for line in exc.format().splitlines():  # what `facade check` prints, a record each
                logger.warning("%s", line)
            return False
        self._watch_sources(compiled.sources)
        changed = [key for key in ("backend", "backends", "serving")
                   if getattr(new, key) != getattr(self.facade, key)]
        if changed:
            where = " and ".join(dict.fromkeys(
                {"backend": "backend:", "backends": "backend:", "serving": "server:"}[k]
                for k in changed))
            logger.warning("%s changed %s settings, which take effect on a restart; still "
                           "serving the last version", name, where)
            return False
        self._swap(new)
        await self.listeners.publish()  # in memory, at once; sessions may be slow to answer
        await self._notify()
        return True

    def _swap(self, new: Facade) -> None:
        old = self.facade
        remove_components(self.server, old)
        try:
            add_components(self.server, new, self.upstreams, self.observer)
        except Exception:
            logger.exception("reload failed while registering; restoring the last version")
            with contextlib.suppress(Exception):
                remove_components(self.server, new)
            add_components(self.server, old, self.upstreams, self.observer)
            raise
        self.facade = new
        self.observer.facade_changed(new)
        for hook in self.on_swap:
            hook(new)
        before, after = {t.name for t in old.tools}, {t.name for t in new.tools}
        added, removed = sorted(after - before), sorted(before - after)
        logger.info(f"reloaded {self.config.name}: {len(new.tools)} tool(s)"
                    + (f", added {', '.join(added)}" if added else "")
                    + (f", removed {', '.join(removed)}" if removed else ""))
        for warning in new.warnings:
            logger.warning("%s", warning.format(new.config_file))

    async def _notify(self) -> None:
        for key, session in list(self._sessions.sessions.items()):
            try:
                with anyio.fail_after(5):
                    await session.send_tool_list_changed()
                    await session.send_resource_list_changed()
                    await session.send_prompt_list_changed()
            except Exception:  # a client that left: forget it
                self._sessions.sessions.pop(key, None)


def _snapshot(files: list[Path]) -> Snapshot:
    seen: Snapshot = {}
    for path in files:
        try:
            stat = path.stat()
            seen[path] = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            seen[path] = None
    return seen
