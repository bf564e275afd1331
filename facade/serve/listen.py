"""Serve time: `subscriptions/listen` streams, how 2026-07-28 clients hear of a hot reload.

Clients of the handshake era keep a session, and a reload sends `notifications/tools/
list_changed` on it (`facade.serve.reload`). A 2026-07-28 client has no session: it opts in
to change events with a `subscriptions/listen` request (SEP-2575) whose response is the
stream. fastmcp 4.2 serves no such method, so `ListChanges` registers the SDK's
`ListenHandler` on fastmcp's low-level server; the SDK then advertises `listChanged` to
modern clients (it derives the flags from whether the method is served). A reload
publishes `ToolsListChanged`, `ResourcesListChanged` and `PromptsListChanged` on an
in-process bus, and every open stream that asked for the kind gets it.

The bus is per process: each process of a replica set watches and reloads the files on its
own, so each tells its own listeners. A stream carries no data, only "refetch": nothing in
it depends on who listens.
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ToolsListChanged,
)
from mcp_types import SubscriptionsListenRequestParams

__all__ = ["LISTEN_METHOD", "ListChanges"]

LISTEN_METHOD = "subscriptions/listen"
# A reload publishes three events, and an idle stream holds at most one of each at once
# unless its client stops reading for several reloads; past this it is ended (the client
# re-listens and refetches: no event is replayed anyway).
_BUFFERED_EVENTS = 16


class ListChanges:
    """The `subscriptions/listen` side of a hot reload: at most `max_streams` open at once
    (further listen requests get a JSON-RPC error saying the limit is reached)."""

    def __init__(self, server: FastMCP[Any], max_streams: int) -> None:
        self.bus = InMemorySubscriptionBus()
        self.handler = ListenHandler(self.bus, max_subscriptions=max_streams,
                                     max_buffered_events=_BUFFERED_EVENTS)
        # fastmcp has no public accessor for its low-level server; `_mcp_server` is the
        # SDK `Server` that fastmcp itself registers every handler on.
        server._mcp_server.add_request_handler(LISTEN_METHOD, SubscriptionsListenRequestParams,
                                               self.handler)

    async def publish(self) -> None:
        """Tell every open stream that the tools, resources and prompts changed."""
        for event in (ToolsListChanged(), ResourcesListChanged(), PromptsListChanged()):
            await self.bus.publish(event)

    def close(self) -> None:
        """End every open stream gracefully (the client sees the stream's final result,
        not a dropped connection): on shutdown, so that no stream holds it up."""
        self.handler.close()
