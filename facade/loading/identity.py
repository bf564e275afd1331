"""Load time: who the backend sees, from `backend.auth` and `backend.identity_headers`.

    backend.auth.*_env / *_file   the service credential: env var names, or file paths
                                  (made absolute here, relative to the curation)
    backend.auth.token_exchange   a token exchanged per caller (RFC 8693)
    backend.identity_headers      claims of the caller's verified token, as headers

Per-user identity needs a verified caller, so a curation that asks for it without
`server.auth` is refused here (token exchange may name a `subject_token_env` instead, for
local use); tools' `claims` conditions need `server.auth` as well. Values are read at serve
time (`facade.call.credentials`, `facade.call.exchange`), never here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from facade.errors import PathPart, Problem
from facade.loading.curation import ToolCuration, section_of
from facade.loading.flatten import is_forbidden_header
from facade.loading.sections import Auth, TokenExchange
from facade.loading.yamlsource import YAMLDocument
from facade.tools import TokenExchangeSettings

__all__ = ["auth_names", "caller_problems", "identity_headers", "token_exchange"]

Expand = Callable[[str, tuple[PathPart, ...]], str]
_FILE_KEYS = ("bearer_file", "api_key_file", "basic_password_file")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 §5.6.2 token
# Headers the façade sets itself, or that carry credentials or routing.
_RESERVED = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization",
                       "x-api-key", "api-key", "x-request-id", "accept", "accept-encoding",
                       "user-agent", "content-type", "mcp-session-id"})


def auth_names(auth: Auth | None, config: Path) -> dict[str, str] | None:
    """The service credential's env var names and file paths (absolute), or None when
    there is no service credential (none, or a token exchanged per caller)."""
    if auth is None or auth.token_exchange is not None:
        return None
    names = auth.model_dump(exclude_none=True, exclude={"token_exchange"})
    for key in _FILE_KEYS:
        if key in names:
            names[key] = str((config.parent / names[key]).absolute())
    return names


def token_exchange(exchange: TokenExchange, expand: Expand, config: Path,
                   at: tuple[PathPart, ...], doc: YAMLDocument, problems: list[Problem]
                   ) -> TokenExchangeSettings:
    """The frozen exchange settings; URLs and names have their `${VAR}`s expanded."""
    endpoint = expand(exchange.token_endpoint, (*at, "token_endpoint"))
    if not re.match(r"^https?://[^/\s]+", endpoint):
        problems.append(doc.problem((*at, "token_endpoint"), f"{endpoint!r} is not an "
                                    "http(s) URL", hint="e.g. https://idp.example.com/token"))
    audience = expand(exchange.audience, (*at, "audience")) if exchange.audience else None
    resource = expand(exchange.resource, (*at, "resource")) if exchange.resource else None
    if audience is None and resource is None:
        problems.append(doc.problem(at, "name the backend with `audience`, `resource`, or "
                                    "both", hint="without them the token service cannot "
                                    "tell which backend the token is for"))
    secret_file, key_file = exchange.client_secret_file, exchange.private_key_file
    return TokenExchangeSettings(
        token_endpoint=endpoint,
        client_id=expand(exchange.client_id, (*at, "client_id")),
        client_auth=exchange.client_auth,
        client_secret_env=exchange.client_secret_env,
        client_secret_file=str((config.parent / secret_file).absolute()) if secret_file
        else None,
        private_key_file=str((config.parent / key_file).absolute()) if key_file else None,
        private_key_id=exchange.private_key_id,
        assertion_algorithm=exchange.assertion_algorithm,
        audience=audience, resource=resource, scopes=tuple(exchange.scope),
        requested_token_type=exchange.requested_token_type,
        subject_token_env=exchange.subject_token_env,
        refresh_before=exchange.refresh_before, cache_size=exchange.cache_size,
    )


def identity_headers(headers: Mapping[str, str], at: tuple[PathPart, ...],
                     doc: YAMLDocument, problems: list[Problem]
                     ) -> tuple[tuple[str, str], ...]:
    """`backend.identity_headers` as (header, claim) pairs, after checking the names."""
    for name, claim in headers.items():
        if not _TOKEN.match(name):
            problems.append(doc.problem((*at, name), f"{name!r} is not a header name",
                                        key=True))
        elif is_forbidden_header(name) or name.lower() in _RESERVED:
            problems.append(doc.problem((*at, name), f"header {name!r} cannot carry a claim: "
                                        "it carries credentials or routing, or facade sets it",
                                        key=True, hint="use a header of your own, e.g. "
                                        "X-User-Id"))
        if not claim.strip():
            problems.append(doc.problem((*at, name), "name a claim, e.g. `sub`"))
    return tuple(headers.items())


def caller_problems(doc: YAMLDocument, at: tuple[PathPart, ...], auth: Auth | None,
                    headers: Mapping[str, str],
                    tools: Iterable[tuple[str, ToolCuration]], inbound_auth: bool) -> list[Problem]:
    """Per-user identity and claim conditions need `server.auth` (a verified caller)."""
    tools = list(tools)
    if inbound_auth:
        return _claim_problems(doc, tools)
    hint = "configure server.auth (JWTs from your identity provider) and serve over HTTP"
    problems = []
    if headers:
        problems.append(doc.problem((*at, "identity_headers"), "identity headers need a "
                                    "verified caller, but server.auth is not configured",
                                    hint=hint))
    exchange = auth.token_exchange if auth else None
    if exchange is not None and exchange.subject_token_env is None:
        problems.append(doc.problem(
            (*at, "auth", "token_exchange"), "token exchange needs a verified caller's token, "
            "but server.auth is not configured", hint=hint + "; for local use over stdio, "
            "name the subject token with `subject_token_env`"))
    for name, tool in tools:
        if tool.claims:
            problems.append(doc.problem((section_of(tool), name, "claims"), "claim conditions "
                                        "need server.auth, which is not configured",
                                        hint=hint))
    return problems + _claim_problems(doc, tools)


def _claim_problems(doc: YAMLDocument, tools: list[tuple[str, ToolCuration]]
                    ) -> list[Problem]:
    problems = []
    for name, tool in tools:
        for claim, values in tool.claims.items():
            if not claim.strip() or not values:
                problems.append(doc.problem((section_of(tool), name, "claims", claim),
                                            "a claim condition names a claim and at least "
                                            "one accepted value", hint="e.g. groups: "
                                            "[support]"))
    return problems
