"""The curated tool definitions: the frozen result of load time, the only input of call time.

A `ToolDefinition` holds everything a call needs, already compiled: the input and output
schemas, how each argument maps onto the HTTP request, and the response `Shaper`. Nothing
at call time looks at the spec or the curation again.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from facade.errors import Problem
from facade.shaping import Shaper

__all__ = ["Argument", "AuthSettings", "BackendSettings", "Facade", "HTTPBinding",
           "JWTSettings", "ListCacheHint", "PromptDefinition", "RateLimit", "RateLimitStore",
           "ResourceDefinition", "ServeLimits", "ServeSettings", "StaticToken",
           "TokenExchangeSettings", "ToolDefinition",
           "agent_path", "annotations_for", "masked_url", "tool_name_for", "unique_tool_name"]

Location = Literal["path", "query", "header", "cookie", "body", "body_whole"]
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
DEFAULT_MAX_ARGUMENT_BYTES = 64 * 1024


def masked_url(url: str) -> str:
    """`url` with the password of its user info replaced by `***`, for display."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # a malformed netloc: show none of it
        return "<a URL that does not parse>"
    if not password:
        return url
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@" + parts.netloc.rpartition("@")[2]).geturl()


def tool_name_for(operation_id: str | None, method: str, path: str) -> str:
    """The suggested tool name for an operation: snake_case, `^[a-z][a-z0-9_]{0,63}$`.

    The operationId when there is one (`getItemById` → `get_item_by_id`), else the method
    and the literal path segments (`GET /items/{id}/stock` → `get_items_stock`).
    """
    if operation_id:
        words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", operation_id)
        words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", words)
    else:
        literal = [s for s in path.split("/") if s and not s.startswith("{")]
        words = "_".join([method.lower(), *literal])
    name = re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"op_{name}"
    return name[:64].rstrip("_")


def unique_tool_name(name: str, taken: Container[str]) -> str:
    """`name`, or `name_2`, `name_3`… (cut to stay within 64 characters) when taken.

    >>> unique_tool_name("get_item", {"get_item"})
    'get_item_2'
    """
    candidate, n = name, 2
    while candidate in taken:
        suffix = f"_{n}"
        candidate, n = name[:64 - len(suffix)].rstrip("_") + suffix, n + 1
    return candidate


def annotations_for(method: str, read_only: bool) -> dict[str, Any]:
    """MCP tool annotations derived from the HTTP method.

    A read-only façade only ever holds GET/HEAD tools, so they are read-only, not
    destructive and idempotent. Otherwise the method decides, as HTTP defines it.
    """
    if read_only or method in READ_ONLY_METHODS:
        return {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True,
                "openWorldHint": False}
    return {"readOnlyHint": False, "destructiveHint": method == "DELETE",
            "idempotentHint": method in ("PUT", "DELETE"), "openWorldHint": False}


@dataclass(frozen=True)
class Argument:
    """One value of the request: shown to the agent, or fixed by the curation."""

    name: str  # the agent-facing name (for a fixed value: the spec's name)
    source: str  # the spec's parameter name or body property
    location: Location
    style: str = "form"
    explode: bool = True
    fixed: bool = False
    value: Any = None  # the fixed value, or the default sent when omitted
    has_value: bool = False
    body_path: tuple[str, ...] = ()
    allow_reserved: bool = False
    allow: frozenset[str] = frozenset()  # path: characters the curation lets through
    max_length: int = 256  # path: longest value accepted
    reserved_keys: frozenset[str] = frozenset()  # exploded query object: keys it may not set


def agent_path(template: str, arguments: Iterable[Argument]) -> str:
    """A path template as the agent knows it, for messages it reads: each path parameter
    under its argument name, a fixed one (which the agent never sees) as `…`.

    >>> agent_path("/items/{itemId}", [Argument("sku", "itemId", "path")])
    '/items/{sku}'
    """
    for arg in arguments:
        if arg.location == "path":
            shown = "…" if arg.fixed else "{" + arg.name + "}"
            template = template.replace("{" + arg.source + "}", shown)
    return template


@dataclass(frozen=True)
class HTTPBinding:
    method: str
    path: str  # the spec's path template, e.g. /items/{itemId}
    arguments: tuple[Argument, ...]
    body_media_type: str | None = None
    response_media_type: str | None = None

    @property
    def agent_label(self) -> str:
        """`GET /items/{sku}`: the operation as the agent knows its arguments."""
        return f"{self.method} {agent_path(self.path, self.arguments)}"


@dataclass(frozen=True)
class ToolDefinition:
    """A curated tool, ready to register."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None  # published: loose below the root (see below)
    wrap_result: bool  # results are returned as {"result": …}
    annotations: dict[str, Any]
    binding: HTTPBinding
    shaper: Shaper
    operation: str  # operationId, or "METHOD /path"
    title: str | None = None
    max_response_bytes: int | None = None  # overrides the backend's cap
    max_argument_bytes: int = DEFAULT_MAX_ARGUMENT_BYTES  # a call's arguments, as JSON
    audit_arguments: tuple[str, ...] = ()  # argument values the audit log may record
    scopes: tuple[str, ...] = ()  # inbound token scopes needed to list and call it (HTTP)
    api: str = ""  # the API it calls, in a multi-API curation (`apis:`); "" for single-API
    # Claim conditions on the caller's verified token: (claim, accepted values); the token's
    # claim (a string or a list) must hold one of the values, for every condition.
    claims: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # What the spec documents for the backend's body (never wrapped), pruned like the
    # results: answers are checked against it, never against `output_schema`, which
    # accepts any value at a documented place (`facade.loading.tolerance`).
    documented_schema: dict[str, Any] | None = None
    # "tolerant": deviations from `documented_schema` are reported and the data passed
    # on; "strict": they fail the call (`response.validate`).
    validate: Literal["tolerant", "strict"] = "tolerant"


@dataclass(frozen=True)
class TokenExchangeSettings:
    """RFC 8693 token exchange at the backend's authorization server, per caller; see
    `facade.loading.sections.TokenExchange` for what each field means. Secrets are named
    by env var or file path, never held here."""

    token_endpoint: str
    client_id: str
    client_auth: str = "client_secret_basic"  # or "client_secret_post", "private_key_jwt"
    client_secret_env: str | None = None
    client_secret_file: str | None = None  # absolute path
    private_key_file: str | None = None  # absolute path of a PEM key (private_key_jwt)
    private_key_id: str | None = None
    assertion_algorithm: str = "RS256"
    audience: str | None = None
    resource: str | None = None
    scopes: tuple[str, ...] = ()
    requested_token_type: str = "urn:ietf:params:oauth:token-type:access_token"
    subject_token_env: str | None = None  # stdio, local use: the subject token's env var
    refresh_before: float = 30.0  # seconds before `expires_in` a cached token is renewed
    cache_size: int = 1000


@dataclass(frozen=True)
class BackendSettings:
    """How to reach the backend; see `facade.loading.curation.Backend` for what each field means."""

    base_url: str
    timeout: float  # the deadline of a whole call
    headers: dict[str, str]
    auth: dict[str, str] | None  # the curation's auth, env var *names* only
    max_response_bytes: int
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    write_timeout: float = 10.0
    pool_timeout: float = 5.0
    retry_attempts: int = 2
    retry_backoff: float = 0.1
    retry_max_backoff: float = 2.0
    breaker_failures: int = 5
    breaker_reset_after: float = 30.0
    max_concurrency: int = 32
    max_json_depth: int = 64
    max_json_items: int = 200_000
    error_excerpt: int = 0
    forward_headers: tuple[str, ...] = ()
    redact: tuple[str, ...] = ()  # the curation's global redaction globs, for error excerpts
    token_exchange: TokenExchangeSettings | None = None  # per-caller backend token
    identity_headers: tuple[tuple[str, str], ...] = ()  # (header, claim) of the caller's token

    @property
    def sends_credentials(self) -> bool:
        """Whether calls may carry a credential: `backend.auth`, a token exchange, forwarded
        headers, or a static header whose name says it holds one."""
        words = ("auth", "key", "token", "secret", "cookie", "session", "signature")
        return self.auth is not None or self.token_exchange is not None or \
            bool(self.forward_headers) or \
            any(word in name.lower() for name in self.headers for word in words)

    @property
    def needs_caller(self) -> bool:
        """Whether each call needs a verified caller (no stdio without `subject_token_env`)."""
        exchange = self.token_exchange
        return bool(self.identity_headers) or (
            exchange is not None and exchange.subject_token_env is None)


@dataclass(frozen=True)
class StaticToken:
    """A bearer token the operator hands out, by the env var that holds it."""

    principal: str
    token_env: str  # the env var that holds the token; its value is read at serve time
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class JWTSettings:
    """Where JWT signing keys come from, and what every token must claim."""

    jwks_uri: str
    issuer: str
    audience: tuple[str, ...]
    algorithm: str = "RS256"
    authorization_servers: tuple[str, ...] = ()  # advertised in RFC 9728 metadata


@dataclass(frozen=True)
class AuthSettings:
    """Inbound auth: static tokens, JWTs, or both."""

    tokens: tuple[StaticToken, ...] = ()
    jwt: JWTSettings | None = None
    public_url: str | None = None  # where clients reach the façade; None: derived at serve


@dataclass(frozen=True)
class RateLimitStore:
    """The Redis that holds the buckets when replicas share one limit."""

    url: str = field(repr=False)  # redis:// or rediss://; may hold a password
    key_prefix: str | None = None  # None: `facade:rl:<server name>`
    timeout: float = 0.25  # seconds one check may take; then `on_error` applies
    on_error: Literal["open", "closed"] = "open"  # open: this replica's own limit

    @property
    def shown(self) -> str:
        """The URL for log lines and messages: any password masked."""
        return masked_url(self.url)


@dataclass(frozen=True)
class RateLimit:
    """A token bucket per principal: in this process, or in a shared `store`."""

    per_minute: float
    burst: int
    store: RateLimitStore | None = None


@dataclass(frozen=True)
class ServeLimits:
    """What one HTTP replica takes on; see `facade.loading.sections.ServerLimits`."""

    max_in_flight: int = 64  # MCP requests under way; more are shed with 503
    max_connections: int = 1000  # open connections; past it uvicorn answers 503
    request_timeout: float = 10.0  # to read a request's headers and body
    keep_alive: int = 5  # idle seconds before a kept-alive connection is closed
    max_listeners: int = 256  # subscriptions/listen streams open at once


@dataclass(frozen=True)
class ListCacheHint:
    """`server.list_cache`: the SEP-2549 cache hint on tools/list and the other lists."""

    ttl: int  # seconds
    scope: Literal["private", "public"] = "private"


@dataclass(frozen=True)
class ServeSettings:
    """What `facade serve` needs beyond the tools. The defaults are a local, open server."""

    auth: AuthSettings | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    rate_limit: RateLimit | None = None
    shutdown_grace: float = 20.0
    limits: ServeLimits = field(default_factory=ServeLimits)
    list_cache: ListCacheHint | None = None


@dataclass(frozen=True)
class ResourceDefinition:
    """A curated GET operation read as an MCP resource: `uri` holds `{argument}`
    variables (none for a fixed resource); reading runs `tool`'s call path."""

    name: str
    uri: str
    variables: tuple[str, ...]
    mime_type: str
    tool: ToolDefinition  # description, title, schemas, binding and shaping of the read


@dataclass(frozen=True)
class PromptDefinition:
    name: str
    description: str | None
    title: str | None
    arguments: tuple[tuple[str, str | None, bool], ...]  # name, description, required
    template: str
    tools: tuple[str, ...]

    def render(self, arguments: dict[str, str]) -> str:
        """Fill the template (checked at load); missing optional arguments become empty."""
        return self.template.format_map(_Blank(arguments))


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Facade:
    """A validated, curated façade: what `facade.load` returns."""

    name: str
    instructions: str | None
    read_only: bool
    backend: BackendSettings
    tools: tuple[ToolDefinition, ...]
    config_file: str
    spec_file: str
    warnings: tuple[Problem, ...] = field(default=())
    serving: ServeSettings = field(default_factory=ServeSettings)
    resources: tuple[ResourceDefinition, ...] = ()
    prompts: tuple[PromptDefinition, ...] = ()
    # Multi-API curations: every API's backend by API name (`backend` is the first one).
    # Empty for a single-API curation.
    backends: dict[str, BackendSettings] = field(default_factory=dict)
    # Every spec file it was built from, the root document first (what `--watch` watches).
    # Where it was read from, not what it is: two equal façades may come from other paths.
    sources: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def is_multi_api(self) -> bool:
        return bool(self.backends)

    @property
    def needs_caller(self) -> bool:
        """Whether calls need a verified caller: per-user backend identity, or claim
        conditions on a tool. Over stdio there is none, so such a façade cannot serve."""
        backends = self.backends.values() if self.backends else (self.backend,)
        return any(b.needs_caller for b in backends) or any(t.claims for t in self.tools)

    def backend_for(self, api: str) -> BackendSettings:
        """The backend a tool of `api` calls (`ToolDefinition.api`)."""
        return self.backends[api] if self.backends else self.backend
