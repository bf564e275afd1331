"""Assemble the FastMCP server: one `CuratedTool` per definition, one backend client per API.

What one call does is in `facade.call.tool`; this module builds the server around the
tools: backend clients, the lifespan that closes them, and hot reload when asked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import httpx
from fastmcp import FastMCP
from fastmcp.server.auth import AuthProvider
from fastmcp.tools import Tool
from fastmcp.utilities.versions import VersionSpec

from facade.call.events import Observer
from facade.call.scrub import install_log_scrubber
from facade.call.upstream import MissingCredentialError, Upstream
from facade.serve.components import Upstreams, add_components
from facade.serve.reload import Reloader
from facade.tools import Facade
from facade.version import __version__

__all__ = ["FacadeMCP", "Upstreams", "build_server", "build_upstreams", "callerless_problems"]

_OVER_HTTP = "serve it over HTTP with server.auth (`facade serve --transport http`)"


def callerless_problems(facade: Facade, environ: Mapping[str, str]) -> list[str]:
    """Why `facade` cannot serve where no caller is verified (stdio, `facade call`): each
    per-user identity it needs, as a message naming the curation key. Empty if it can."""
    problems = []
    for api, backend in (facade.backends or {"": facade.backend}).items():
        at = f"apis.{api}.backend" if api else "backend"
        if backend.identity_headers:
            problems.append(f"{at}.identity_headers: sends the caller's claims to the backend, "
                            f"and without HTTP there is no verified caller; {_OVER_HTTP}")
        exchange = backend.token_exchange
        if exchange is None:
            continue
        if exchange.subject_token_env is None:
            problems.append(f"{at}.auth.token_exchange: exchanges the caller's token, and "
                            f"without HTTP there is no verified caller; {_OVER_HTTP}, or for "
                            "local use name a token with `subject_token_env`")
        elif not environ.get(exchange.subject_token_env):
            problems.append(f"{at}.auth.token_exchange.subject_token_env: environment "
                            f"variable {exchange.subject_token_env!r} is not set")
    for tool in facade.tools:
        if tool.claims:
            problems.append(f"tool {tool.name}: its `claims` conditions need a verified "
                            f"caller; {_OVER_HTTP}")
    return problems


class FacadeMCP(FastMCP[Any]):
    """FastMCP, with a tool looked up directly in its one provider.

    FastMCP finds a tool by asking each of its providers in an anyio task group, a task
    per provider: about 70 µs of each `tools/call` (2-3 % of its CPU in bench/README's
    "façade tax"). facade's server has one provider, its local one, so the lookup asks it
    directly and treats its answer as the task group would. Anything else (another
    provider mounted, a tool with its own `auth` check) takes FastMCP's own way.
    """

    async def _get_tool(self, name: str, version: VersionSpec | None = None
                        ) -> Tool | None:
        if len(self.providers) != 1:
            return await super()._get_tool(name, version)
        try:
            found: Tool | BaseException | None = await self.providers[0].get_tool(name, version)
        except Exception as exc:  # as the task group hands a provider's failure on
            found = exc
        tool = cast("Tool | None", self._get_highest_version_result(
            [found], f"get_tool({name!r})"))
        if tool is not None and tool.auth is not None:
            return await super()._get_tool(name, version)
        return tool


def build_upstreams(facade: Facade, *, environ: Mapping[str, str] | None = None,
                    transport: httpx.AsyncBaseTransport | None = None,
                    observer: Observer | None = None) -> dict[str, Upstream]:
    """One `Upstream` per API (own client, credentials, breaker and concurrency limit).

    Raises:
        MissingCredentialError: an env var named in a backend's `auth` is not set (no
            backend is called before all are built).
    """
    upstreams = {}
    for api, backend in (facade.backends or {"": facade.backend}).items():
        try:
            upstreams[api] = Upstream(backend, environ=environ, transport=transport,
                                      observer=observer)
        except MissingCredentialError as exc:
            if not api:
                raise
            raise MissingCredentialError(f"apis.{api}.{exc}") from None
    return upstreams


def build_server(facade: Facade, *, environ: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 observer: Observer | None = None, auth: AuthProvider | None = None,
                 upstream: Upstreams | None = None, watch: Path | None = None
                 ) -> FastMCP[Any]:
    """A FastMCP server exposing exactly the curated tools of `facade`.

    `observer` receives call events (metrics, audit). The backend credentials are
    registered with `facade.call.scrub`, and log records are scrubbed of them from here on.
    `auth` checks inbound HTTP requests (`facade.serve.inbound`). `upstream` replaces the backend
    clients built from `environ`, `transport` and `observer` (`facade serve` keeps a handle
    on them for readiness): a mapping of API name to `Upstream`, as `build_upstreams`
    makes. With `watch` (the curation file), the server re-reads the
    curation and its spec when they change and swaps in a valid new version
    (`facade.serve.reload`).

    Raises:
        MissingCredentialError: an env var named in a backend's `auth` is not set.
    """
    observer = observer or Observer()
    upstreams = upstream if upstream is not None else build_upstreams(
        facade, environ=environ, transport=transport, observer=observer)
    install_log_scrubber()

    reloader: Reloader | None = None

    @asynccontextmanager
    async def lifespan(server: FastMCP[Any]) -> AsyncIterator[dict[str, Any]]:
        try:
            if reloader is None:
                yield {}
            else:
                async with reloader.running():
                    yield {}
        finally:
            for each in upstreams.values():
                await each.aclose()
            await observer.aclose()  # e.g. the shared rate limit's connections

    hint = facade.serving.list_cache
    server: FastMCP[Any] = FacadeMCP(
        name=facade.name,
        instructions=facade.instructions,
        version=__version__,
        lifespan=lifespan,
        mask_error_details=True,
        dereference_schemas=False,  # schemas are self-contained already, built at load
        on_duplicate="error",
        auth=auth,
        cache_ttl=hint.ttl if hint else None,
        cache_scope=hint.scope if hint else None,
    )
    if hint is not None:
        # fastmcp applies one hint to every cacheable method, `resources/read` too. A read
        # is a backend call whose answer changes on its own schedule and may be the caller's
        # own data: a list hint must not let clients reuse it. (`_mcp_server` is fastmcp's
        # SDK server, which holds the hints by method; fastmcp has no public accessor.)
        server._mcp_server.cache_hints.pop("resources/read", None)
    add_components(server, facade, upstreams, observer)
    if watch is not None:
        reloader = Reloader(server, watch, facade, upstreams, observer)
        server.facade_reloader = reloader  # type: ignore[attr-defined]
    return server
