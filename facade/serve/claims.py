"""Serve time: per-tool claim conditions (`tools.<name>.claims`), on top of scopes.

`ToolClaims` hides a tool from tools/list, and refuses a call to it, when the caller's
verified token does not meet its conditions (`facade.call.identity.meets_claims`): a tool
only for callers whose `groups` contain `support`, say. As with scopes, a caller never
learns that a hidden tool exists; the call path checks the conditions again, for resources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastmcp.exceptions import NotFoundError
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult

from facade.call.identity import Conditions, meets_claims
from facade.tools import Facade

__all__ = ["ToolClaims", "claim_conditions"]


def claim_conditions(facade: Facade) -> dict[str, Conditions]:
    return {t.name: t.claims for t in facade.tools if t.claims}


class ToolClaims(Middleware):
    """Lists and lets through only the tools whose claim conditions the caller meets."""

    def __init__(self, conditions: Mapping[str, Conditions]) -> None:
        self.update(conditions)

    def update(self, conditions: Mapping[str, Conditions]) -> None:
        self.conditions = {name: c for name, c in conditions.items() if c}

    async def on_list_tools(self, context: MiddlewareContext[Any],
                            call_next: CallNext[Any, Sequence[Tool]]) -> Sequence[Tool]:
        caller = get_access_token()
        return [t for t in await call_next(context)
                if meets_claims(self.conditions.get(t.name, ()), caller)]

    async def on_call_tool(self, context: MiddlewareContext[Any],
                           call_next: CallNext[Any, ToolResult]) -> ToolResult:
        name = context.message.name
        if not meets_claims(self.conditions.get(name, ()), get_access_token()):
            raise NotFoundError(f"Unknown tool: {name!r}")  # as if it did not exist
        return await call_next(context)
