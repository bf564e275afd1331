"""AWS Lambda: the façade behind API Gateway (HTTP API), through Mangum.

Set the function's handler to `facade.lambda_handler.handler`. It serves the same ASGI app
as `facade serve --transport http` (`facade.serve.http.build_http`: stateless streamable
HTTP with JSON responses at `/mcp`, inbound auth, the Origin check, the probes), one API
Gateway v2 event at a time. API Gateway routes by Host, and Mangum reports the request's
Host as the server's, so `server.allowed_hosts` has nothing to add there; browser Origins
are checked against `server.allowed_origins` as usual. Configuration comes from the
environment:

    FACADE_CONFIG                   the curation (default: curation.yaml in the working
                                    directory, which is the function's code root)
    FACADE_ARTIFACT                 the artifact `facade build` wrote (default: beside the
                                    curation); a missing or stale one falls back to loading
                                    the spec, with one line in the log saying why
    FACADE_ALLOW_UNAUTHENTICATED=1  serve without `server.auth` (only behind a route that
                                    API Gateway itself authorizes)
    FACADE_LOG_FORMAT, _LOG_LEVEL   the log stream, as `facade serve --log-format/--log-level`
                                    (default json and info; `facade.serve.logs`)

plus the variables the curation names (backend credentials, inbound tokens).

Lifespan: with its default `lifespan="auto"`, Mangum runs the app's ASGI lifespan around
*every* invocation, so fastmcp's session manager would be started and stopped, and the
backend's connection pool opened and closed, for each event (a new backend connection per
tool call). Here Mangum runs with `lifespan="off"`, and the lifespan is started once per
execution environment, at its first invocation, on the event loop Mangum reuses for every
later one. Lambda promises no shutdown hook, so it is never shut down there: the
connections end with the environment. `FacadeHandler.close` ends it for tests and local
runs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from mangum import Mangum
from mangum.protocols import LifespanCycle
from mangum.types import ASGI, LambdaContext, LambdaEvent

from facade.errors import LoadError
from facade.loading.artifact import artifact_path, load_fast
from facade.loading.loader import DEFAULT_CONFIG
from facade.serve.http import ServeError, build_http, describe, say
from facade.serve.logs import FORMAT_ENV, LEVEL_ENV, default_format, install
from facade.tools import ServeSettings

__all__ = ["FacadeHandler", "LambdaStartError", "handler"]

ALLOW_UNAUTHENTICATED = "FACADE_ALLOW_UNAUTHENTICATED"
CONFIG_ENV = "FACADE_CONFIG"  # as `--config`'s envvar in facade.cli.common


class LambdaStartError(Exception):
    """The function cannot serve as configured; the message says why and what to do."""


class FacadeHandler:
    """A Lambda handler for one curation: the app is built and its lifespan started once."""

    def __init__(self, config: Path, *, environ: Mapping[str, str] | None = None) -> None:
        """Load the curation (from its artifact when current) and build the app.

        Raises:
            LambdaStartError: the curation does not load, or cannot be served as configured.
        """
        environ = os.environ if environ is None else environ
        try:
            facade, why = load_fast(config, artifact=artifact_path(config, environ),
                                    environ=dict(environ))
        except LoadError as exc:
            raise LambdaStartError(f"{config}: the curation does not load:\n{exc}") from None
        if why:
            say(why)
        settings = facade.serving
        public_url = _public_url(settings, environ)
        try:
            built, _ = build_http(facade, public_url=public_url, environ=environ)
        except ServeError as exc:
            raise LambdaStartError(str(exc)) from None
        self.tools = len(facade.tools)
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)  # the loop Mangum uses, invocation after invocation
        self.lifespan: LifespanCycle | None = None
        # Mangum's protocol wants `__call__` to return a coroutine; Starlette's type says
        # awaitable. The app is `_Front`, an `async def __call__`: a coroutine.
        self.app = cast("ASGI", built)
        self.mangum = Mangum(self.app, lifespan="off")
        say(f"facade: serving {self.tools} tool(s) on AWS Lambda ({describe(settings)})")

    def __call__(self, event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
        asyncio.set_event_loop(self.loop)
        if self.lifespan is None:
            self.lifespan = LifespanCycle(self.app, "on")
            self.lifespan.__enter__()  # startup, on self.loop; shut down only by close()
        return self.mangum(event, context)

    def close(self) -> None:
        """Run the lifespan's shutdown (closing the backend clients) and the event loop."""
        if self.lifespan is not None:
            asyncio.set_event_loop(self.loop)
            self.lifespan.__exit__(None, None, None)
            self.lifespan = None
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        asyncio.set_event_loop(None)


def _public_url(settings: ServeSettings, environ: Mapping[str, str]) -> str:
    """`server.auth.public_url`, which Lambda needs: an API Gateway stage is public, so (as
    for a bind beyond localhost) no auth needs saying so, and there is no bind address to
    derive the URL from.

    Raises:
        LambdaStartError: no `server.auth` and no FACADE_ALLOW_UNAUTHENTICATED=1, or auth
            without `public_url`.
    """
    if settings.auth is None:
        if environ.get(ALLOW_UNAUTHENTICATED) != "1":
            raise LambdaStartError(
                "refusing to serve without inbound auth: anyone who can reach the API "
                "Gateway route could call the backend with the façade's credentials. "
                f"Configure server.auth in the curation, or set {ALLOW_UNAUTHENTICATED}=1 "
                "if API Gateway authorizes the route itself (IAM, a JWT or Lambda authorizer)")
        return "http://localhost"  # named nowhere: without auth there is no metadata
    if settings.auth.public_url is None:
        raise LambdaStartError(
            "server.auth.public_url is not set: on Lambda there is no bind address to derive "
            "it from (set it to the URL clients reach, e.g. the API Gateway stage's "
            "https://….execute-api.….amazonaws.com or your custom domain)")
    return settings.auth.public_url


_instance: FacadeHandler | None = None


def handler(event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point: the first invocation of an execution environment builds the
    façade from `$FACADE_CONFIG` (and its artifact); every invocation serves one event."""
    global _instance
    if _instance is None:
        try:  # every line to CloudWatch in one format, as `facade serve` writes them
            install(os.environ.get(FORMAT_ENV) or default_format(),
                    os.environ.get(LEVEL_ENV) or "info")
        except ValueError as exc:
            raise LambdaStartError(f"{FORMAT_ENV}/{LEVEL_ENV}: {exc}") from None
        # A LambdaStartError propagates: Lambda logs its message, API Gateway answers 502,
        # and the next invocation tries again.
        _instance = FacadeHandler(Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG))
    return _instance(event, context)
