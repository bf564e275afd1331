"""Serve time: who may call the façade over HTTP, built on fastmcp's verifiers.

    server.auth.tokens  → `StaticTokenVerifier` (token values read from env vars, here, once)
    server.auth.jwt     → `JWTVerifier` against the JWKS, issuer and audience (all required),
                          plus `_TimedJWTs`: `exp` required, `nbf` and `iat` honoured
    both                → the first verifier that accepts the token wins

The verifier is wrapped in a `RemoteAuthProvider`, which serves RFC 9728 protected-resource
metadata at `/.well-known/oauth-protected-resource/mcp`; fastmcp then answers a request with
no or a bad token `401` with `WWW-Authenticate: Bearer … resource_metadata="…"`.
`ToolScopes` hides and refuses tools whose `scopes` the caller's token lacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from fastmcp.exceptions import InsufficientScopeError
from fastmcp.server.auth import AccessToken, RemoteAuthProvider, TokenVerifier
from fastmcp.server.auth.providers.jwt import JWTVerifier, StaticTokenVerifier
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult
from mcp.server.auth.routes import build_resource_metadata_url
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from facade.call.events import CallRecord, Observer
from facade.call.scrub import register_secrets
from facade.tools import AuthSettings, Facade

__all__ = ["JWT_LEEWAY", "MIN_TOKEN_LENGTH", "InboundAuthError", "ToolScopes", "build_auth"]

MIN_TOKEN_LENGTH = 16
JWT_LEEWAY = 60  # seconds of clock skew allowed between the identity provider and us


class InboundAuthError(Exception):
    """A token env var is unset or too weak (raised when `serve` starts)."""


class _FirstMatch(TokenVerifier):
    """Static tokens and JWTs side by side: the first verifier that accepts a token wins."""

    def __init__(self, verifiers: Sequence[TokenVerifier]) -> None:
        super().__init__()
        self.verifiers = tuple(verifiers)

    async def verify_token(self, token: str) -> AccessToken | None:
        for verifier in self.verifiers:
            found = await verifier.verify_token(token)
            if found is not None:
                return found
        return None


class _TimedJWTs(JWTVerifier):
    """fastmcp's `JWTVerifier` refuses an expired token but accepts one without `exp`, and
    ignores `nbf` and `iat`. Here a token must carry a numeric `exp` (in the past: refused,
    by fastmcp), must not be used before its `nbf`, nor claim to be issued in the future
    (`iat`); both with `JWT_LEEWAY` seconds for clock skew."""

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = await super().load_access_token(token)
        if found is None:
            return None
        why = _untimely(found.claims, self._clock())
        if why is not None:
            self.logger.info("Bearer token rejected for client %s: %s", found.client_id, why)
            return None
        return found


def _untimely(claims: Mapping[str, Any], now: float) -> str | None:
    """Why a token's time claims refuse it now, or None."""
    def number(name: str) -> float | None:
        value = claims.get(name)
        return float(value) if isinstance(value, (int, float)) and \
            not isinstance(value, bool) else None

    exp, nbf, iat = number("exp"), number("nbf"), number("iat")
    if exp is None:
        return "no numeric exp claim"
    if exp <= now:
        return "token expired"
    for name, value in (("nbf", nbf), ("iat", iat)):
        if name in claims and value is None:
            return f"{name} is not a number"
        if value is not None and value > now + JWT_LEEWAY:
            return f"{name} is in the future"
    return None


class _ResourceServer(RemoteAuthProvider):
    """A `RemoteAuthProvider` whose metadata may name no authorization server: static
    tokens come from the operator, not from an OAuth server (RFC 9728 makes the field
    optional; the SDK's model does not, so the document is written here)."""

    def get_routes(self, mcp_path: str | None = None) -> list[Route]:
        if self.authorization_servers:
            return super().get_routes(mcp_path)
        self.set_mcp_path(mcp_path)
        resource = f"{str(self.base_url).rstrip('/')}/{(mcp_path or '').lstrip('/')}"
        document: dict[str, Any] = {"resource": resource, "bearer_methods_supported": ["header"]}
        if self.scopes_supported:
            document["scopes_supported"] = self.scopes_supported
        if self.resource_name:
            document["resource_name"] = self.resource_name

        async def metadata(request: Request) -> JSONResponse:
            return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600"})

        path = urlsplit(str(build_resource_metadata_url(AnyHttpUrl(resource)))).path
        return [Route(path, endpoint=metadata, methods=["GET"])]


def build_auth(facade: Facade, settings: AuthSettings, public_url: str,
               environ: Mapping[str, str]) -> RemoteAuthProvider:
    """The auth provider for `FastMCP(auth=…)`.

    Raises:
        InboundAuthError: a `token_env` is unset, too short, or shared by two principals.
    """
    verifiers: list[TokenVerifier] = []
    if settings.tokens:
        verifiers.append(StaticTokenVerifier(_static_tokens(settings, environ)))
    jwt = settings.jwt
    if jwt is not None:
        verifiers.append(_TimedJWTs(
            jwks_uri=jwt.jwks_uri, issuer=jwt.issuer, audience=list(jwt.audience),
            algorithm=jwt.algorithm))
    verifier = verifiers[0] if len(verifiers) == 1 else _FirstMatch(verifiers)
    servers = list(jwt.authorization_servers or (jwt.issuer,)) if jwt else []
    scopes = sorted({s for t in facade.tools for s in t.scopes})
    return _ResourceServer(
        token_verifier=verifier, authorization_servers=[AnyHttpUrl(s) for s in servers],
        base_url=public_url, scopes_supported=scopes, resource_name=facade.name)


def _static_tokens(settings: AuthSettings, environ: Mapping[str, str]
                   ) -> dict[str, dict[str, Any]]:
    tokens: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(settings.tokens):
        where = f"server.auth.tokens[{i}].token_env"
        value = environ.get(entry.token_env, "")
        if not value:
            raise InboundAuthError(f"{where}: environment variable {entry.token_env!r} "
                                   f"is not set (the token of {entry.principal!r})")
        if len(value) < MIN_TOKEN_LENGTH:
            raise InboundAuthError(f"{where}: the token in {entry.token_env!r} is shorter "
                                   f"than {MIN_TOKEN_LENGTH} characters; use a random one, "
                                   "e.g. `openssl rand -hex 32`")
        if value in tokens:
            raise InboundAuthError(f"{where}: {entry.principal!r} has the same token as "
                                   f"{tokens[value]['client_id']!r}; give each its own")
        tokens[value] = {"client_id": entry.principal, "sub": entry.principal,
                         "scopes": list(entry.scopes)}
    register_secrets(tokens)  # masked in every log line from here on
    return tokens


class ToolScopes(Middleware):
    """Per-tool scopes: a tool is listed and callable only with a token that grants all of
    its `scopes`. A refused call is a tool error naming the missing scopes, and reaches
    `observer` (the audit log and metrics) as a finished call with outcome "forbidden":
    denied attempts are what an audit log is for."""

    def __init__(self, scopes: Mapping[str, frozenset[str]],
                 observer: Observer | None = None) -> None:
        self.observer = observer or Observer()
        self.update(scopes)

    def update(self, scopes: Mapping[str, frozenset[str]]) -> None:
        self.scopes = {name: needed for name, needed in scopes.items() if needed}

    async def on_list_tools(self, context: MiddlewareContext[Any],
                            call_next: CallNext[Any, Sequence[Tool]]) -> Sequence[Tool]:
        granted = _granted()
        return [t for t in await call_next(context)
                if self.scopes.get(t.name, frozenset()) <= granted]

    async def on_call_tool(self, context: MiddlewareContext[Any],
                           call_next: CallNext[Any, ToolResult]) -> ToolResult:
        name = context.message.name
        missing = sorted(self.scopes.get(name, frozenset()) - _granted())
        if missing:
            token = get_access_token()
            self.observer.call_finished(CallRecord(
                tool=name, principal=token.client_id if token is not None else None,
                outcome="forbidden"))
            raise InsufficientScopeError(missing, message=(
                f"Tool {name!r} needs the scope(s) {', '.join(missing)}, which this client's "
                "token does not grant; ask the operator for a token with them"))
        return await call_next(context)


def _granted() -> frozenset[str]:
    token = get_access_token()
    return frozenset(token.scopes) if token is not None else frozenset()
