"""Serve time: `facade serve --transport http` as a service (stateless streamable HTTP).

What wraps the FastMCP app, outermost first:

    _Front        /healthz /readyz /metrics pass straight through (probes and scrapers send
                  pod IPs as Host); everything else is Host/Origin-checked (421/403, fastmcp's
                  `HostOriginGuardMiddleware` in strict mode) and counted while in flight;
                  `subscriptions/listen` streams (`serve --watch`, 2026-07-28 clients) are
                  counted apart, as they stay open until the client leaves or a drain
    InboundTraceContext
                  (while tracing) the request's `traceparent` header parents its spans
    FastMCP app   auth (401 + WWW-Authenticate, RFC 9728 metadata), /mcp, custom routes

`_Server` is uvicorn's server with a graceful SIGTERM: readiness turns 503 at once, requests
under way get up to `server.shutdown_grace` seconds, then the app's lifespan ends and closes
the backend client. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastmcp import FastMCP
from fastmcp.server.http import HostOriginGuardMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from facade.call.tracing import enabled as tracing_enabled
from facade.call.upstream import MissingCredentialError
from facade.serve.claims import ToolClaims, claim_conditions
from facade.serve.components import Upstreams
from facade.serve.connections import read_deadline
from facade.serve.inbound import InboundAuthError, ToolScopes, build_auth
from facade.serve.logs import access_logged, uvicorn_log_config
from facade.serve.metrics import CONTENT_TYPE, Metrics
from facade.serve.observe import observers_for
from facade.serve.process import serving
from facade.serve.server import build_server, build_upstreams
from facade.serve.shared_limit import RedisMissing
from facade.serve.tracing import InboundTraceContext
from facade.tools import Facade, ServeLimits, ServeSettings

__all__ = ["MCP_PATH", "PROBE_PATHS", "BindRefused", "Lifecycle", "ServeError", "build_http",
           "check_bind", "describe", "http_app", "public_url_for", "run", "say", "serve_http"]

MCP_PATH = "/mcp"
_LISTEN = b"subscriptions/listen"
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
logger = logging.getLogger("facade.serve")
say = logger.info  # a lifecycle line: serving, draining, stopped


class ServeError(Exception):
    """The HTTP server cannot start as configured; the message says why and what to do."""


class BindRefused(ServeError):
    """`serve` was asked to listen beyond localhost without inbound auth."""


def serve_http(facade: Facade, *, host: str, port: int, allow_unauthenticated: bool = False,
               environ: Mapping[str, str] | None = None, watch: Path | None = None) -> None:
    """Build everything, serve until SIGTERM, drain, close.

    Raises:
        ServeError: the bind address needs auth, or a credential env var is missing.
    """
    settings = facade.serving
    check_bind(host, settings, allow_unauthenticated)
    public_url = public_url_for(host, port, settings)
    app, lifecycle = build_http(facade, public_url=public_url, environ=environ, watch=watch)
    say(f"serving {len(facade.tools)} tool(s) at http://{host}:{port}{MCP_PATH} "
        f"({describe(settings)})")
    run(app, lifecycle, host, port, settings.limits)


def build_http(facade: Facade, *, public_url: str, environ: Mapping[str, str] | None = None,
               watch: Path | None = None, metrics_dir: Path | None = None,
               worker: int | None = None) -> tuple[ASGIApp, Lifecycle]:
    """The ASGI app of `serve --transport http` (also what `facade.lambda_handler` wraps),
    and its lifecycle: backends, inbound auth, scopes, metrics, probes. `public_url` is where
    clients reach the façade (inbound auth's metadata names it). A worker of `serve
    --workers N` gives its number (in its audit lines) and the shared metrics directory.

    Raises:
        ServeError: a credential env var (backend or inbound token) is missing or unusable.
    """
    environ = os.environ if environ is None else environ
    settings = facade.serving
    backends = facade.backends.values() or [facade.backend]
    limit = settings.rate_limit
    metrics = Metrics([t.name for t in facade.tools], [b.base_url for b in backends],
                      metrics_dir,
                      rate_limit_store=limit is not None and limit.store is not None)
    try:
        observer = observers_for(facade, metrics, worker=worker)
        upstreams = build_upstreams(facade, environ=environ, observer=observer)
        auth = None
        if settings.auth is not None:
            auth = build_auth(facade, settings.auth, public_url, environ)
    except (MissingCredentialError, InboundAuthError, RedisMissing) as exc:
        raise ServeError(str(exc)) from None
    server = build_server(facade, observer=observer, auth=auth, upstream=upstreams,
                          watch=watch)
    lifecycle = Lifecycle(server, upstreams, len(facade.tools), settings.shutdown_grace)
    reloader = getattr(server, "facade_reloader", None)
    if reloader is not None:  # readiness counts the tools a reload brings
        reloader.on_swap.append(lambda new: setattr(lifecycle, "tool_count", len(new.tools)))
        lifecycle.on_drain.append(reloader.listeners.close)
    if auth is not None and (watch or any(t.scopes for t in facade.tools)):
        scopes = ToolScopes(_scopes(facade), observer)
        server.add_middleware(scopes)
        if reloader is not None:  # a reload brings new tools, with their scopes
            reloader.on_swap.append(lambda new: scopes.update(_scopes(new)))
    if auth is not None and (watch or any(t.claims for t in facade.tools)):
        claims = ToolClaims(claim_conditions(facade))
        server.add_middleware(claims)
        if reloader is not None:
            reloader.on_swap.append(lambda new: claims.update(claim_conditions(new)))
    return http_app(server, lifecycle, metrics, settings), lifecycle


def _scopes(facade: Facade) -> dict[str, frozenset[str]]:
    return {t.name: frozenset(t.scopes) for t in facade.tools}


def describe(settings: ServeSettings) -> str:
    """The inbound auth, in a few words, for the start-up line."""
    auth = settings.auth
    if auth is None:
        return "no inbound auth"
    kinds = [f"{len(auth.tokens)} static token(s)"] if auth.tokens else []
    if auth.jwt is not None:
        kinds.append(f"JWTs from {auth.jwt.issuer}")
    return "auth: " + " and ".join(kinds)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: ServeSettings, allow_unauthenticated: bool) -> None:
    """Anyone who can reach an open façade can call its tools with the operator's backend
    credentials, so without `server.auth` it listens on localhost only, unless told."""
    if settings.auth is None and not allow_unauthenticated and not is_loopback(host):
        raise BindRefused(
            f"refusing to serve on {host} without inbound auth: anyone who can reach it "
            "could call the backend with the façade's credentials. Configure server.auth in "
            "the curation, bind to 127.0.0.1, or pass --allow-unauthenticated (e.g. behind "
            "an authenticating gateway)")


def public_url_for(host: str, port: int, settings: ServeSettings | None = None) -> str:
    """Where clients reach the façade: `server.auth.public_url` if set, else the URL a local
    client would use."""
    if settings is not None and settings.auth is not None and settings.auth.public_url:
        return settings.auth.public_url
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    return f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}"


@dataclass
class Lifecycle:
    """Readiness and draining. `in_flight` counts MCP requests under way."""

    server: FastMCP[Any]
    upstreams: Upstreams  # one per API ("" for a single-API façade)
    tool_count: int
    grace: float
    clock: Callable[[], float] = time.monotonic
    in_flight: int = 0
    listening: int = 0  # open subscriptions/listen streams, not counted in `in_flight`
    draining_since: float | None = field(default=None)
    on_drain: list[Callable[[], None]] = field(default_factory=list)

    async def not_ready(self) -> list[str]:
        """Why this replica should get no traffic; empty when it is ready.

        Judged by the replica's own state only. A backend's health (its circuit breaker)
        is not a reason: every replica shares the backend, so it would take them all out
        of the Service, no call would reach the breaker to close it, and readiness would
        outlast the outage. The breaker shows in /metrics and in the tools' errors; the
        tools of other APIs keep working meanwhile.
        """
        reasons = []
        if self.draining_since is not None:
            reasons.append("shutting down")
        for api, upstream in self.upstreams.items():
            if not upstream.is_open_client:
                reasons.append("backend client closed" + (f" ({api})" if api else ""))
        if len(await self.server.list_tools(run_middleware=False)) != self.tool_count:
            reasons.append("tools not registered")
        return reasons

    def begin_drain(self) -> None:
        if self.draining_since is None:
            self.draining_since = self.clock()
            say(f"draining: {self.in_flight} request(s) in flight, "
                f"up to {self.grace:g}s to finish")
            # Listen streams end now: they would never finish. Run from the event loop, not
            # from the signal handler this is called in (which may interrupt the loop).
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            for hook in self.on_drain:
                if loop is None:
                    hook()
                else:
                    loop.call_soon_threadsafe(hook)

    def drained(self) -> bool:
        if self.draining_since is None:
            return False
        return self.in_flight == 0 or self.clock() - self.draining_since >= self.grace

    def remaining(self) -> float:
        since = self.draining_since if self.draining_since is not None else self.clock()
        return max(0.0, self.grace - (self.clock() - since))


class _Front:
    """Probes pass through; every other request is Host/Origin-checked and counted."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle, settings: ServeSettings,
                 metrics: Metrics | None = None) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.max_in_flight = settings.limits.max_in_flight
        self.max_listeners = settings.limits.max_listeners
        self.metrics = metrics
        self.guarded = HostOriginGuardMiddleware(
            app, allowed_hosts=list(settings.allowed_hosts),
            allowed_origins=list(settings.allowed_origins), mode="strict")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        if (b"mcp-method", _LISTEN) in scope["headers"]:
            await self._listen(scope, receive, send)
            return
        if self.lifecycle.in_flight >= self.max_in_flight:
            await self._shed(scope, receive, send)
            return
        self.lifecycle.in_flight += 1
        try:
            await self.guarded(scope, receive, send)
        except asyncio.CancelledError:
            if self.lifecycle.draining_since is None:
                raise
            # The grace period is over and uvicorn cancelled the request: answer 503 (retry
            # elsewhere) rather than let it log a traceback and answer 500.
            say("grace period over; a request under way was answered 503")
            with contextlib.suppress(Exception):
                await PlainTextResponse("shutting down\n", status_code=503, headers={
                    "Retry-After": "1", "Connection": "close"})(scope, receive, send)
        finally:
            self.lifecycle.in_flight -= 1

    async def _listen(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A `subscriptions/listen` stream (the SDK checks that the `Mcp-Method` header
        matches the body's method). It lasts until its client leaves or a drain begins,
        so it takes no `max_in_flight` slot, only one of `max_listeners`."""
        lifecycle = self.lifecycle
        if lifecycle.draining_since is not None:
            await self._shed(scope, receive, send, "facade is shutting down; listen to "
                             "another replica, or retry in 1 s")
            return
        if lifecycle.listening >= self.max_listeners:
            await self._shed(scope, receive, send, f"facade has {self.max_listeners} listen "
                             "streams open on this replica; retry in 1 s")
            return
        lifecycle.listening += 1
        try:
            await self.guarded(scope, receive, send)
        finally:
            lifecycle.listening -= 1

    async def _shed(self, scope: Scope, receive: Receive, send: Send,
                    message: str | None = None) -> None:
        """At `server.limits.max_in_flight` (or as `message` says): answer 503 at once rather
        than queue the request, where it would wait out its client's timeout and slow others."""
        if self.metrics is not None:
            self.metrics.shed()
        message = message or (f"facade is overloaded: {self.max_in_flight} requests are "
                              "under way on this replica; retry in 1 s")
        body = json.dumps({"jsonrpc": "2.0", "id": None,
                           "error": {"code": -32000, "message": message}})
        await Response(body, status_code=503, media_type="application/json", headers={
            "Retry-After": "1", "Cache-Control": "no-store"})(scope, receive, send)


def http_app(server: FastMCP[Any], lifecycle: Lifecycle, metrics: Metrics,
             settings: ServeSettings) -> ASGIApp:
    """The ASGI app: /mcp (stateless, JSON responses), the probes and /metrics."""

    @server.custom_route("/healthz", methods=["GET"], include_in_schema=False)
    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})

    @server.custom_route("/readyz", methods=["GET"], include_in_schema=False)
    async def readyz(request: Request) -> Response:
        reasons = await lifecycle.not_ready()
        text = "not ready: " + "; ".join(reasons) if reasons else "ready"
        return PlainTextResponse(text + "\n", status_code=503 if reasons else 200,
                                 headers={"Cache-Control": "no-store"})

    @server.custom_route("/metrics", methods=["GET"], include_in_schema=False)
    async def metrics_route(request: Request) -> Response:
        for upstream in lifecycle.upstreams.values():
            upstream.breaker.refresh()  # open → half_open once due, even with no calls
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app: ASGIApp = server.http_app(path=MCP_PATH, json_response=True, stateless_http=True,
                                   host_origin_protection=False)  # _Front does it, not probes
    if tracing_enabled():  # an inbound `traceparent` header parents the request's spans
        app = InboundTraceContext(app)
    return _Front(app, lifecycle, settings, metrics)


class _Server(uvicorn.Server):
    """uvicorn, with SIGTERM/SIGINT starting a drain instead of stopping at once. A worker
    of `serve --workers N` (`parent`: the pid that forked it) ignores SIGINT (Ctrl-C reaches
    the whole process group; the parent forwards it as SIGTERM) and drains if orphaned."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle,
                 parent: int | None = None) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.parent = parent

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.parent is not None and sig == signal.SIGINT:
            return
        if self.lifecycle.draining_since is not None:  # a second signal: stop now
            self.should_exit = self.force_exit = True
            return
        self.lifecycle.begin_drain()

    async def on_tick(self, counter: int) -> bool:
        if self.parent is not None and os.getppid() != self.parent:
            self.lifecycle.begin_drain()  # the parent is gone: nobody would stop us
        if not self.should_exit and self.lifecycle.drained():
            left = self.lifecycle.in_flight
            say("drained: every request finished" if not left else
                f"drained: grace period over, {left} request(s) still in flight")
            # What is left of the grace period goes to open connections and the lifespan.
            self.config.timeout_graceful_shutdown = max(1, round(self.lifecycle.remaining()))
            self.should_exit = True
        return await super().on_tick(counter)


def run(app: ASGIApp, lifecycle: Lifecycle, host: str, port: int,
        limits: ServeLimits | None = None, *, sock: socket.socket | None = None,
        parent: int | None = None) -> bool:
    """Serve until SIGTERM/SIGINT and a drain; return once the backend client is closed,
    with whether the server had started. A worker of `serve --workers N` gives its socket
    and its parent's pid.

    Slow clients are bounded by `limits` (`server.limits`): a request must arrive whole
    within `request_timeout`, idle kept-alive connections close after `keep_alive`, and
    past `max_connections` open connections every request is answered 503 by uvicorn.
    Headers are capped by h11 at 16 KiB (a larger head is answered 400)."""
    limits = limits or ServeLimits()
    # uvicorn logs to facade's stream; its access log at debug only (the audit log has more).
    config = uvicorn.Config(app, host=host, port=port, lifespan="on",
                            log_config=uvicorn_log_config(), access_log=access_logged(),
                            server_header=False, ws="none",
                            timeout_graceful_shutdown=max(1, round(lifecycle.grace)),
                            http=read_deadline(limits.request_timeout),
                            limit_concurrency=limits.max_connections,
                            timeout_keep_alive=limits.keep_alive)
    server = _Server(config, lifecycle, parent)
    with serving(asyncio_run=True):  # heap frozen, fewer collections: facade.serve.process
        server.run(sockets=None if sock is None else [sock])
    if server.started and parent is None:
        say("stopped")
    return server.started

