"""Load time: how `facade serve` faces its own clients, from the curation's `server:` section.

Inbound auth (static bearer tokens, JWTs), the Host/Origin allow-lists, the per-principal
rate limit and the shutdown grace period become a frozen `ServeSettings` on the `Facade`,
like every other load-time result. Only env var *names* are kept for tokens: their values
are read when the HTTP server starts (`facade.serve.inbound`), never at load.

The settings themselves (`ServeSettings` and its parts) live in `facade.tools`, with the
other frozen definitions; `facade.serve.http` and `facade.serve.inbound` do the serving.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from facade.errors import PathPart, Problem, did_you_mean
from facade.loading.curation import RateLimitCuration, ServerInfo, ToolCuration, section_of
from facade.loading.yamlsource import YAMLDocument
from facade.tools import (
    AuthSettings,
    JWTSettings,
    ListCacheHint,
    RateLimit,
    RateLimitStore,
    ServeLimits,
    ServeSettings,
    StaticToken,
    masked_url,
)

__all__ = ["per_caller", "serve_settings", "tool_problems"]

Expand = Callable[[str, tuple[PathPart, ...]], str]
_SCOPE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")  # RFC 6749 §3.3 scope-token


def serve_settings(info: ServerInfo, expand: Expand, problems: list[Problem],
                   doc: YAMLDocument, per_caller: Sequence[str] = ()) -> ServeSettings:
    """The serving settings of a curation; `${VAR}`s in URLs, issuer, audience and the
    allow-lists are expanded with `expand`, which reports unset variables itself.
    `per_caller` names the tools and resources whose listing depends on the caller
    (`scopes`, `claims`): a list cache hint must not let callers share their lists."""
    at: tuple[PathPart, ...] = ("server",)
    hosts = tuple(expand(h, (*at, "allowed_hosts", i)) for i, h in enumerate(info.allowed_hosts))
    origins = tuple(expand(o, (*at, "allowed_origins", i))
                    for i, o in enumerate(info.allowed_origins))
    for i, origin in enumerate(origins):
        if origin != "*" and not _is_url(origin):
            problems.append(doc.problem((*at, "allowed_origins", i),
                                        f"{origin!r} is not an origin",
                                        hint="scheme and host, e.g. https://chat.example.com"))
    limit = info.rate_limit
    cache = info.list_cache
    if cache is not None and cache.scope == "public" and per_caller:
        shown = ", ".join(per_caller[:3]) + (f" and {len(per_caller) - 3} more"
                                             if len(per_caller) > 3 else "")
        problems.append(doc.problem(
            (*at, "list_cache", "scope"), "a public list cache lets one caller's tools/list "
            f"be served to another, and here the list depends on the caller: {shown} "
            "(`scopes` or `claims`)", hint="use `scope: private`"))
    return ServeSettings(
        auth=_auth(info, expand, problems, doc) if info.auth else None,
        allowed_hosts=hosts, allowed_origins=origins,
        rate_limit=_rate_limit(limit, expand, problems, doc) if limit else None,
        shutdown_grace=info.shutdown_grace,
        limits=ServeLimits(**info.limits.model_dump()),
        list_cache=ListCacheHint(cache.ttl, cache.scope) if cache else None,
    )


def _rate_limit(limit: RateLimitCuration, expand: Expand, problems: list[Problem],
                doc: YAMLDocument) -> RateLimit:
    """The rate limit; with a `store`, where its buckets live (an empty URL once expanded,
    e.g. `${RATE_LIMIT_STORE:-}`, means none: each replica limits on its own)."""
    store = None
    at: tuple[PathPart, ...] = ("server", "rate_limit", "store")
    url = expand(limit.store, at) if limit.store else ""
    if url:
        why = _store_url_problem(url)
        if why:
            problems.append(doc.problem(at, f"{masked_url(url)!r} {why}", hint=(
                "e.g. redis://redis.example.internal:6379/0, or rediss:// for TLS; a "
                "password goes in the user info: redis://:${REDIS_PASSWORD}@host:6379/0")))
        store = RateLimitStore(url, limit.key_prefix, limit.store_timeout,
                               limit.on_store_error)
    return RateLimit(limit.per_minute, limit.burst, store)


def _store_url_problem(url: str) -> str | None:
    """Why `url` is not a Redis URL facade can use; None when it is."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL with a valid host and port"
    if parts.scheme not in ("redis", "rediss"):
        return "is not a redis:// or rediss:// URL"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "has port 0"
    if parts.query or parts.fragment:
        return "has a query string or fragment: facade sets the connection options itself"
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():
        return "names a database that is not a number (redis://host:6379/0)"
    return None


def _auth(info: ServerInfo, expand: Expand, problems: list[Problem], doc: YAMLDocument
          ) -> AuthSettings:
    auth = info.auth
    assert auth is not None
    at: tuple[PathPart, ...] = ("server", "auth")
    public_url = expand(auth.public_url, (*at, "public_url")) if auth.public_url else None
    if public_url is not None and not _is_url(public_url):
        problems.append(doc.problem((*at, "public_url"), f"{public_url!r} is not an http(s) "
                                    "URL", hint="e.g. https://facade.example.com"))
    seen: dict[str, int] = {}
    for i, entry in enumerate(auth.tokens):
        problems += _scope_problems(doc, (*at, "tokens", i, "scopes"), entry.scopes)
        if entry.principal in seen:
            problems.append(doc.problem((*at, "tokens", i, "principal"),
                                        f"principal {entry.principal!r} is already used by "
                                        f"tokens[{seen[entry.principal]}]"))
        seen.setdefault(entry.principal, i)
    tokens = tuple(StaticToken(t.principal, t.token_env, tuple(t.scopes)) for t in auth.tokens)
    jwt = None
    if auth.jwt is not None:
        j, jat = auth.jwt, (*at, "jwt")
        audience = [j.audience] if isinstance(j.audience, str) else j.audience
        jwt = JWTSettings(
            jwks_uri=expand(j.jwks_uri, (*jat, "jwks_uri")),
            issuer=expand(j.issuer, (*jat, "issuer")),
            audience=tuple(expand(a, (*jat, "audience")) for a in audience),
            algorithm=j.algorithm,
            authorization_servers=tuple(expand(s, (*jat, "authorization_servers", i))
                                        for i, s in enumerate(j.authorization_servers or [])),
        )
        for key in ("jwks_uri",):
            if not _is_url(getattr(jwt, key)):
                problems.append(doc.problem((*jat, key), f"{getattr(jwt, key)!r} is not an "
                                            "http(s) URL"))
        for i, server in enumerate(jwt.authorization_servers):
            if not _is_url(server):
                problems.append(doc.problem((*jat, "authorization_servers", i),
                                            f"{server!r} is not an http(s) URL"))
        if not any(jwt.audience):
            problems.append(doc.problem((*jat, "audience"), "an audience is required",
                                        hint="the value your identity provider puts in `aud` "
                                        "for this façade, often its public URL"))
    return AuthSettings(tokens=tokens, jwt=jwt, public_url=public_url)


def per_caller(operations: Sequence[tuple[str, ToolCuration]], at: str = "") -> list[str]:
    """Where the tools and resources whose listing depends on the caller are curated
    (`tools.get_item`; `at` is `apis.<api>.` in a multi-API curation)."""
    return [f"{at}{section_of(tool)}.{name}" for name, tool in operations
            if tool.scopes or tool.claims]


def tool_problems(doc: YAMLDocument, name: str, tool: ToolCuration,
                  properties: Mapping[str, Any]) -> list[Problem]:
    """A tool's `scopes` must be scope tokens; its `audit_args` must name arguments the agent
    can pass (after renames)."""
    section = section_of(tool)
    problems = _scope_problems(doc, (section, name, "scopes"), tool.scopes)
    for i, arg in enumerate(tool.audit_args):
        if arg not in properties:
            problems.append(doc.problem(
                (section, name, "audit_args", i), f"{arg!r} is not an argument of {name}",
                hint=did_you_mean(arg, list(properties)) or
                f"its arguments are: {', '.join(properties) or 'none'}"))
    return problems


def _scope_problems(doc: YAMLDocument, at: tuple[PathPart, ...], scopes: list[str]
                    ) -> list[Problem]:
    return [doc.problem((*at, i), f"{scope!r} is not a scope: one word of printable "
                        "characters without quotes or backslashes (RFC 6749 §3.3)")
            for i, scope in enumerate(scopes) if not _SCOPE.match(scope)]


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
