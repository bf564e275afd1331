"""The `server:` and `backend:` sections of curation.yaml, as pydantic models.

How the façade faces its own clients (inbound auth, allow-lists, rate limit) and how it
reaches the backend (URL, credentials by env var name, timeouts, retries, breaker, caps).
The rest of the curation's schema is in `facade.loading.curation`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "Auth", "Backend", "CircuitBreaker", "InboundAuth",
           "JWTAuth", "ListCache", "RateLimitCuration", "Retries", "ServerInfo", "ServerLimits",
           "StaticTokenAuth", "StrictModel", "Timeouts", "TokenExchange"]

DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024


class StrictModel(BaseModel):
    """Base of every curation node: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StaticTokenAuth(StrictModel):
    """One bearer token accepted by `facade serve --transport http`."""

    principal: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$",
        description="Who presents the token: the name in the audit log and the rate limiter.",
    )
    token_env: str = Field(description="Env var holding the token; read when serving starts.")
    scopes: list[str] = Field(
        default_factory=list, description="Scopes the token grants (see `tools.<name>.scopes`)."
    )


JWTAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                       "ES384", "ES512", "EdDSA"]


class JWTAuth(StrictModel):
    """JWT access tokens from an identity provider, checked against its JWKS."""

    jwks_uri: str = Field(description="URL of the provider's JSON Web Key Set.")
    issuer: str = Field(description="The `iss` every token must carry.")
    audience: str | list[str] = Field(
        description="The `aud` every token must carry (one of these): tokens minted for "
        "another service are refused."
    )
    algorithm: JWTAlgorithm = Field("RS256", description="The signing algorithm accepted.")
    authorization_servers: list[str] | None = Field(
        None, description="Authorization servers advertised in the protected-resource "
        "metadata; defaults to `[issuer]`."
    )


class InboundAuth(StrictModel):
    """Who may call the façade over HTTP. Without it, `serve` binds only to localhost."""

    tokens: list[StaticTokenAuth] = Field(
        default_factory=list, description="Static bearer tokens, by env var name."
    )
    jwt: JWTAuth | None = Field(None, description="JWT validation against a JWKS.")
    public_url: str | None = Field(
        None, description="The URL clients reach the façade at (without /mcp); it names the "
        "protected resource in RFC 9728 metadata. Defaults to the bind address."
    )

    @model_validator(mode="after")
    def _something(self) -> InboundAuth:
        if not self.tokens and self.jwt is None:
            raise ValueError("give `tokens`, `jwt`, or both")
        return self


class RateLimitCuration(StrictModel):
    """A token bucket per principal (per token, or per JWT subject)."""

    per_minute: float = Field(gt=0, description="Sustained tool calls per minute.")
    burst: int = Field(10, ge=1, description="Calls allowed in a burst (the bucket size).")
    store: str | None = Field(
        None, description="A Redis every replica shares, `redis://host:port/db` or "
        "`rediss://…` (`${VAR}` expanded; empty: none): the limit then holds across "
        "replicas. Without it each replica limits on its own, in memory."
    )
    key_prefix: str | None = Field(
        None, min_length=1, max_length=128, pattern=r"^[^\s]+$",
        description="What the store's keys start with (`<prefix>:<principal>`); default "
        "`facade:rl:<server name>`."
    )
    on_store_error: Literal["open", "closed"] = Field(
        "open", description="When the store cannot be reached: `open` limits with this "
        "replica's own bucket, `closed` refuses tool calls until it is back."
    )
    store_timeout: float = Field(
        0.25, gt=0, le=5, description="Seconds one check of the store may take (connecting "
        "included) before `on_store_error` applies."
    )


class ServerLimits(StrictModel):
    """What one `serve --transport http` replica takes on before it sheds or closes."""

    max_in_flight: int = Field(
        64, ge=1, description="MCP requests under way at once; more are answered 503 with "
        "`Retry-After` at once (overload is shed, not queued)."
    )
    max_connections: int = Field(
        1000, ge=1, description="Open connections (and requests) at once; past it every "
        "request is answered 503 (uvicorn's `limit_concurrency`)."
    )
    request_timeout: float = Field(
        10.0, gt=0, description="Seconds a client gets to send a request's headers and "
        "body, from connecting or from its first byte; then the connection is closed."
    )
    keep_alive: int = Field(
        5, ge=1, description="Seconds an idle kept-alive connection stays open."
    )
    max_listeners: int = Field(
        256, ge=1, description="`subscriptions/listen` streams open at once (2026-07-28 "
        "clients of `serve --watch` waiting for list changes); past it a listen request is "
        "answered 503. They are not counted in `max_in_flight`."
    )


class ListCache(StrictModel):
    """Cache hints on `tools/list` and the other lists, for 2026-07-28 clients (SEP-2549)."""

    ttl: int = Field(
        ge=1, le=86400, description="Seconds a client may reuse a list before asking again "
        "(sent as `ttlMs`)."
    )
    scope: Literal["private", "public"] = Field(
        "private", description="`private`: a cached list is reused only for the caller who "
        "got it. `public`: it may be shared between callers (refused when a tool or "
        "resource has `scopes` or `claims`, which make the list depend on the caller)."
    )


class ServerInfo(StrictModel):
    name: str | None = Field(None, description="MCP server name shown to clients.")
    instructions: str | None = Field(
        None, description="Server instructions sent to the client at initialization."
    )
    auth: InboundAuth | None = Field(
        None, description="Inbound auth for `serve --transport http`."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host header values accepted besides localhost "
        "and the bind address (`*.example.com` globs); others get 421."
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="Browser origins accepted besides the server's own "
        "(`https://chat.example.com`); others get 403."
    )
    rate_limit: RateLimitCuration | None = Field(
        None, description="Per-principal limit on tool calls."
    )
    shutdown_grace: float = Field(
        20.0, gt=0, description="Seconds in-flight calls get to finish after SIGTERM."
    )
    limits: ServerLimits = Field(
        default_factory=ServerLimits, description="Load shedding, connection cap and "
        "timeouts for slow clients (`serve --transport http`)."
    )
    list_cache: ListCache | None = Field(
        None, description="How long clients may cache `tools/list` (and the resource and "
        "prompt lists); without it, no cache hint is sent."
    )


TOKEN_TYPE_ACCESS = "urn:ietf:params:oauth:token-type:access_token"
ClientAuth = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]


class TokenExchange(StrictModel):
    """OAuth 2.0 Token Exchange (RFC 8693): each caller's verified inbound token is
    exchanged for a token of the backend's own, sent instead of a service credential."""

    token_endpoint: str = Field(
        description="The authorization server's token endpoint (`${VAR}` expanded)."
    )
    client_id: str = Field(description="The façade's client id at that server (`${VAR}` "
                           "expanded); not a secret.")
    client_auth: ClientAuth = Field(
        "client_secret_basic", description="How the façade authenticates to the token "
        "endpoint: a client secret (RFC 6749 §2.3.1), or a JWT signed with its private key "
        "(RFC 7523, `private_key_file`)."
    )
    client_secret_env: str | None = Field(None, description="Env var holding the client "
                                          "secret.")
    client_secret_file: str | None = Field(
        None, description="File holding the client secret (relative to the curation); "
        "re-read when it changes."
    )
    private_key_file: str | None = Field(
        None, description="For `private_key_jwt`: PEM file of the façade's private key "
        "(relative to the curation); re-read when it changes."
    )
    private_key_id: str | None = Field(None, description="For `private_key_jwt`: the `kid` "
                                       "of that key, as registered with the server.")
    assertion_algorithm: Literal["RS256", "PS256", "ES256"] = Field(
        "RS256", description="For `private_key_jwt`: how the client assertion is signed."
    )
    audience: str | None = Field(None, description="`audience` asked for: the backend's "
                                 "logical name at the authorization server.")
    resource: str | None = Field(None, description="`resource` asked for (RFC 8707): the "
                                 "backend's URI.")
    scope: list[str] = Field(default_factory=list, description="Scopes asked for.")
    requested_token_type: str = Field(TOKEN_TYPE_ACCESS, description="The token type asked "
                                      "for; an access token by default.")
    subject_token_env: str | None = Field(
        None, description="For local use over stdio, where no caller is signed in: env var "
        "holding the subject token to exchange. Callers' own tokens are used over HTTP."
    )
    refresh_before: float = Field(30.0, ge=0, description="Seconds before its `expires_in` "
                                  "a cached exchanged token is renewed.")
    cache_size: int = Field(1000, ge=1, description="Callers whose exchanged tokens are "
                            "kept in memory (least recently used first out); never persisted.")

    @model_validator(mode="after")
    def _one_secret(self) -> TokenExchange:
        secrets = (self.client_secret_env, self.client_secret_file)
        if self.client_auth == "private_key_jwt":
            if self.private_key_file is None or any(v is not None for v in secrets):
                raise ValueError("private_key_jwt takes private_key_file, and no client secret")
        elif self.private_key_file is not None:
            raise ValueError("private_key_file is for client_auth: private_key_jwt")
        elif (self.client_secret_env is None) == (self.client_secret_file is None):
            raise ValueError("give exactly one of client_secret_env or client_secret_file")
        return self


class Auth(StrictModel):
    """How facade authenticates to the backend: secrets by env var name or file path,
    or a token exchanged per caller. A file is re-read when it changes (rotation)."""

    bearer_env: str | None = Field(
        None, description="Env var holding a token sent as `Authorization: Bearer …`."
    )
    bearer_file: str | None = Field(None, description="File holding that token (relative "
                                    "to the curation), e.g. a mounted Kubernetes Secret.")
    api_key_env: str | None = Field(None, description="Env var holding an API key.")
    api_key_file: str | None = Field(None, description="File holding an API key.")
    header: str = Field("X-Api-Key", description="Header that carries the API key.")
    basic_user_env: str | None = Field(None, description="Env var holding the basic-auth user.")
    basic_password_env: str | None = Field(
        None, description="Env var holding the basic-auth password."
    )
    basic_password_file: str | None = Field(
        None, description="File holding the basic-auth password."
    )
    token_exchange: TokenExchange | None = Field(
        None, description="Exchange each caller's token for a backend token (RFC 8693)."
    )

    @model_validator(mode="after")
    def _one_scheme(self) -> Auth:
        bearer = [self.bearer_env, self.bearer_file]
        key = [self.api_key_env, self.api_key_file]
        password = [self.basic_password_env, self.basic_password_file]
        schemes = [any(v is not None for v in bearer), any(v is not None for v in key),
                   self.basic_user_env is not None or any(v is not None for v in password),
                   self.token_exchange is not None]
        if sum(schemes) != 1:
            raise ValueError(
                "give exactly one of bearer_env/bearer_file, api_key_env/api_key_file, "
                "basic_user_env + basic_password_env/basic_password_file, or token_exchange"
            )
        for pair in (bearer, key, password):
            if all(v is not None for v in pair):
                raise ValueError("give a secret by env var or by file, not both")
        if schemes[2] and (self.basic_user_env is None or
                           not any(v is not None for v in password)):
            raise ValueError("basic auth needs basic_user_env and basic_password_env or "
                             "basic_password_file")
        return self


class Timeouts(StrictModel):
    """Per-attempt limits, in seconds; each is capped by `backend.timeout`."""

    connect: float = Field(5.0, gt=0, description="Establishing a connection.")
    read: float = Field(10.0, gt=0, description="Waiting for each chunk of the answer.")
    write: float = Field(10.0, gt=0, description="Sending each chunk of the request.")
    pool: float = Field(5.0, gt=0, description="Waiting for a free pooled connection.")


class Retries(StrictModel):
    """Retries of idempotent calls on connect errors, 429, 502, 503 and 504."""

    attempts: int = Field(2, ge=0, le=10, description="Retries after the first attempt; 0 "
                          "disables retrying.")
    backoff: float = Field(0.1, ge=0, description="Base of the exponential backoff (seconds); "
                           "each wait is drawn uniformly below base × 2^retry (full jitter).")
    max_backoff: float = Field(2.0, ge=0, description="Longest single wait, in seconds.")


class CircuitBreaker(StrictModel):
    """After `failures` failed calls in a row, calls fail fast until `reset_after` has
    passed; then one probe call decides between closing and staying open."""

    failures: int = Field(5, ge=1, description="Consecutive failed calls that open it.")
    reset_after: float = Field(30.0, gt=0, description="Seconds open before a probe call.")


class Backend(StrictModel):
    base_url: str = Field(
        description="Base URL of the REST API; `${VAR}` and `${VAR:-default}` are expanded. "
        "The spec's `servers` are never used."
    )
    timeout: float = Field(10.0, gt=0, description="Deadline in seconds for a whole call, "
                           "retries and reading the answer included.")
    timeouts: Timeouts = Field(default_factory=Timeouts,
                               description="Per-attempt connect/read/write/pool timeouts.")
    retries: Retries = Field(default_factory=Retries, description="Retry policy.")
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker,
                                            description="Fail fast while the backend is down.")
    max_concurrency: int = Field(
        32, ge=1, description="Requests under way to the backend at once; more wait up to "
        "`timeouts.pool` for one to finish, then fail as busy."
    )
    max_json_depth: int = Field(64, ge=1, description="Deepest JSON nesting accepted.")
    max_json_items: int = Field(
        200_000, ge=1, description="Most JSON values (objects, arrays, scalars) accepted."
    )
    error_excerpt: int = Field(
        0, ge=0, le=2000, description="Characters of a backend error body shown to the model "
        "(redacted, secrets scrubbed); 0 shows none."
    )
    forward_headers: list[str] = Field(
        default_factory=list, description="Headers of the inbound MCP HTTP request passed on "
        "to the backend. Nothing else is forwarded; credentials never are."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Static headers sent with every backend request."
    )
    auth: Auth | None = Field(None, description="Backend credentials, by env var name.")
    identity_headers: dict[str, str] = Field(
        default_factory=dict, description="Headers carrying claims of the caller's verified "
        "token, for internal APIs that trust a gateway: header name → claim name (`X-User-Id: "
        "sub`); list claims are joined with commas. Needs `server.auth`."
    )
    max_response_bytes: int = Field(
        DEFAULT_MAX_RESPONSE_BYTES, gt=0,
        description="Largest decoded response body accepted from the backend.",
    )
