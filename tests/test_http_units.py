"""The serving pieces one at a time: the curation's `server:` keys, the bind policy, the
rate limiter, the audit log, the metrics, inbound auth, readiness and the Host/Origin front."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastmcp import Client
from fastmcp.exceptions import ToolError
from log_support import messages, records
from starlette.applications import Starlette
from starlette.testclient import TestClient

from facade import LoadError, load
from facade.call.events import CallRecord, Observer
from facade.call.scrub import register_secrets
from facade.cli import main
from facade.serve.http import BindRefused, Lifecycle, _Front, check_bind, public_url_for
from facade.serve.inbound import InboundAuthError, ToolScopes, build_auth
from facade.serve.logs import configured
from facade.serve.metrics import Metrics
from facade.serve.observe import AuditLog, Observers, RateLimiter, observers_for
from facade.serve.server import build_server
from facade.tools import (
    AuthSettings,
    JWTSettings,
    RateLimit,
    ServeLimits,
    ServeSettings,
    StaticToken,
)

Write = Callable[..., Path]

HEAD = """\
version: 1
spec: specs/inventory.yaml
backend: {base_url: "http://127.0.0.1:9/v1"}
"""
TOOLS = """\
tools:
  get_item:
    operation: getItem
    scopes: [inventory.read]
    audit_args: [sku]
    params:
      itemId: {rename: sku}
  get_category:
    operation: getCategory
"""
TOKEN = "a-static-token-0123456789"


def _problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        with pytest.raises(LoadError) as info:
            load(path.name, environ=environ or {})
    finally:
        os.chdir(here)
    return str(info.value).splitlines()


# --- the curation's server section ------------------------------------------------------

def test_server_section_loads_with_env_expansion(write_curation: Write) -> None:
    path = write_curation(HEAD + """\
server:
  auth:
    public_url: ${PUBLIC_URL:-https://mcp.example.com}
    tokens: [{principal: ops, token_env: OPS_TOKEN, scopes: [inventory.read]}]
    jwt:
      jwks_uri: https://login.example.com/jwks.json
      issuer: https://login.example.com/
      audience: [https://mcp.example.com/mcp, inventory]
  allowed_hosts: [mcp.example.com, "*.svc.cluster.local"]
  allowed_origins: [https://chat.example.com]
  rate_limit: {per_minute: 90}
  shutdown_grace: 5
""" + TOOLS)
    facade = load(path, environ={"PUBLIC_URL": "https://facade.internal"})
    assert facade.serving == ServeSettings(
        auth=AuthSettings(
            tokens=(StaticToken("ops", "OPS_TOKEN", ("inventory.read",)),),
            jwt=JWTSettings("https://login.example.com/jwks.json", "https://login.example.com/",
                            ("https://mcp.example.com/mcp", "inventory")),
            public_url="https://facade.internal"),
        allowed_hosts=("mcp.example.com", "*.svc.cluster.local"),
        allowed_origins=("https://chat.example.com",),
        rate_limit=RateLimit(per_minute=90, burst=10), shutdown_grace=5.0)
    get_item = facade.tools[0]
    assert (get_item.scopes, get_item.audit_arguments) == (("inventory.read",), ("sku",))


def test_no_server_section_means_a_local_open_server(write_curation: Write) -> None:
    facade = load(write_curation(HEAD + TOOLS), environ={})
    assert facade.serving == ServeSettings()


def test_server_section_errors(write_curation: Write) -> None:
    path = write_curation(HEAD + """\
server:
  auth: {public_url: "${NOPE}"}
  rate_limit: {per_minute: 0}
""" + TOOLS.replace("audit_args: [sku]", "audit_args: [skuu]").replace(
        "scopes: [inventory.read]", "scopes: [inventory read]"))
    # The shape problems of `server:` do not hide those of the tools.
    assert _problems(path) == [
        "curation.yaml:5:9: server.auth: give `tokens`, `jwt`, or both",
        "curation.yaml:6:28: server.rate_limit.per_minute: Input should be greater than 0",
        "curation.yaml:10:14: tools.get_item.scopes[0]: 'inventory read' is not a scope: one "
        "word of printable characters without quotes or backslashes (RFC 6749 §3.3)",
        "curation.yaml:11:18: tools.get_item.audit_args[0]: 'skuu' is not an argument of "
        "get_item (did you mean 'sku'?)",
    ]
    path = write_curation(HEAD + """\
server:
  auth:
    public_url: "${NOPE}"
    tokens:
      - {principal: ops, token_env: A, scopes: ['a"b']}
      - {principal: ops, token_env: B}
    jwt: {jwks_uri: "file:///etc/keys", issuer: x, audience: ""}
  allowed_origins: [chat.example.com]
""" + TOOLS.replace("audit_args: [sku]", "audit_args: [skuu]").replace(
        "scopes: [inventory.read]", "scopes: [inventory read]"))
    assert _problems(path) == [
        "curation.yaml:6:17: server.auth.public_url: environment variable 'NOPE' is not set "
        "(export NOPE=… or write ${NOPE:-default})",
        "curation.yaml:6:17: server.auth.public_url: '' is not an http(s) URL "
        "(e.g. https://facade.example.com)",
        "curation.yaml:8:49: server.auth.tokens[0].scopes[0]: 'a\"b' is not a scope: one word "
        "of printable characters without quotes or backslashes (RFC 6749 §3.3)",
        "curation.yaml:9:21: server.auth.tokens[1].principal: principal 'ops' is already used "
        "by tokens[0]",
        "curation.yaml:10:21: server.auth.jwt.jwks_uri: 'file:///etc/keys' is not an http(s) "
        "URL",
        "curation.yaml:10:62: server.auth.jwt.audience: an audience is required (the value "
        "your identity provider puts in `aud` for this façade, often its public URL)",
        "curation.yaml:11:21: server.allowed_origins[0]: 'chat.example.com' is not an origin "
        "(scheme and host, e.g. https://chat.example.com)",
        "curation.yaml:15:14: tools.get_item.scopes[0]: 'inventory read' is not a scope: one "
        "word of printable characters without quotes or backslashes (RFC 6749 §3.3)",
        "curation.yaml:16:18: tools.get_item.audit_args[0]: 'skuu' is not an argument of "
        "get_item (did you mean 'sku'?)",
    ]


def test_jwt_audience_is_mandatory(write_curation: Write) -> None:
    path = write_curation(HEAD + """\
server:
  auth:
    jwt: {jwks_uri: "https://idp.example.com/jwks", issuer: "https://idp.example.com/"}
""" + TOOLS)
    assert _problems(path) == [
        "curation.yaml:6:5: server.auth.jwt.audience: missing required key 'audience'"]


# --- bind policy ------------------------------------------------------------------------

OPEN = ServeSettings()
AUTHED = ServeSettings(auth=AuthSettings(tokens=(StaticToken("ops", "OPS_TOKEN"),)))


@pytest.mark.parametrize(("host", "settings", "allow", "refused"), [
    ("127.0.0.1", OPEN, False, False),
    ("localhost", OPEN, False, False),
    ("::1", OPEN, False, False),
    ("127.0.0.2", OPEN, False, False),
    ("0.0.0.0", OPEN, False, True),
    ("::", OPEN, False, True),
    ("10.0.0.5", OPEN, False, True),
    ("facade.internal", OPEN, False, True),
    ("0.0.0.0", OPEN, True, False),
    ("0.0.0.0", AUTHED, False, False),
])
def test_bind_policy(host: str, settings: ServeSettings, allow: bool, refused: bool) -> None:
    if refused:
        with pytest.raises(BindRefused, match=f"refusing to serve on {host} without inbound"):
            check_bind(host, settings, allow)
    else:
        check_bind(host, settings, allow)


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:8000"), ("0.0.0.0", "http://localhost:8000"),
    ("::1", "http://[::1]:8000"), ("facade.internal", "http://facade.internal:8000")])
def test_public_url_defaults_to_the_bind_address(host: str, url: str) -> None:
    assert public_url_for(host, 8000) == url


def test_serve_refuses_a_public_bind_and_missing_tokens_without_a_traceback(
        write_curation: Write) -> None:
    path = write_curation(HEAD + TOOLS)
    result = CliRunner().invoke(main, ["serve", "--config", str(path), "--transport", "http",
                                       "--host", "0.0.0.0"])
    assert result.exit_code == 1
    # The start-up failure is a record of serve's log stream (json when not on a terminal).
    [refusal] = [r for r in records(result.stderr) if r["level"] == "error"]
    assert refusal["message"].startswith(f"{path}: refusing to serve on 0.0.0.0 without "
                                         "inbound auth")
    path = write_curation(HEAD + "server:\n  auth:\n    tokens: [{principal: ops, token_env: "
                          "FACADE_TEST_UNSET_TOKEN}]\n" + TOOLS)
    result = CliRunner().invoke(main, ["serve", "--config", str(path), "--transport", "http",
                                       "--log-format", "text"])
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        "server.auth.tokens[0].token_env: environment variable 'FACADE_TEST_UNSET_TOKEN' is "
        "not set (the token of 'ops')")
    assert " ERROR   facade: " in result.stderr and "{" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- rate limiter -----------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_per_principal() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") is None  # buckets are per principal
    clock.now += 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") is None
    clock.now += 3600
    assert [limiter.take("a") for _ in range(4)][-1] is not None  # never more than `burst`


async def test_rate_limit_refusal_is_a_clear_tool_error() -> None:
    limiter = RateLimiter(per_minute=2, burst=1, clock=Clock())
    await limiter.admit(CallRecord(tool="t", principal="ops"))
    with pytest.raises(ToolError, match=r"^Rate limit exceeded: at most 2 tool calls per "
                       r"minute \(bursts of 1\) per client; retry in 30 s$"):
        await limiter.admit(CallRecord(tool="t", principal="ops"))
    await limiter.admit(CallRecord(tool="t"))  # no principal: "anonymous" has its own bucket


def test_rate_limiter_memory_is_bounded() -> None:
    """Past `max_principals`, the least recently seen are forgotten: an emptied bucket of
    an old principal comes back full, the most recent ones are still remembered."""
    limiter = RateLimiter(per_minute=1, burst=2, clock=Clock(), max_principals=10)

    def empty(principal: str) -> None:
        assert [limiter.take(principal) for _ in range(2)] == [None, None]
        assert limiter.take(principal) is not None

    empty("p0")
    for i in range(1, 100):
        empty(f"p{i}")
    assert limiter.take("p99") is not None  # remembered: still empty
    assert limiter.take("p90") is not None
    assert limiter.take("p0") is None  # forgotten: a full bucket again


# --- audit log, observers ---------------------------------------------------------------

def test_audit_line_has_the_call_and_only_the_allowed_arguments(
        capsys: pytest.CaptureFixture[str]) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    register_secrets([secret])
    log = AuditLog({"get_item": frozenset({"sku"})})
    record = CallRecord(tool="get_item", principal="ops", backend_status=200,
                        response_bytes=321, arguments={"sku": f"SKU-1 {secret}", "x": "y"})
    with configured("json", "error"):  # the audit log is written whatever the level
        log.call_finished(record)
        log.call_finished(CallRecord(tool="other", arguments={"sku": "SKU-2"},
                                     outcome="error"))
    first, second = records(capsys.readouterr().err)
    assert first["logger"] == "facade.audit" and first["message"] == "tool_call"
    assert first["request_id"] == record.request_id
    assert {k: first[k] for k in ("event", "principal", "tool", "outcome", "backend_status",
                                  "bytes", "retries")} == {
        "event": "tool_call", "principal": "ops", "tool": "get_item", "outcome": "ok",
        "backend_status": 200, "bytes": 321, "retries": 0}
    assert first["arguments"] == {"sku": "SKU-1 ***"}
    assert first["level"] == "info" and first["latency_ms"] >= 0
    assert second["principal"] == "anonymous" and "arguments" not in second


class Refuse(Observer):
    def call_started(self, record: CallRecord) -> None:
        raise ToolError("no")


class Broken(Observer):
    def call_finished(self, record: CallRecord) -> None:
        raise RuntimeError("observer bug")


class Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[str] = []

    def call_started(self, record: CallRecord) -> None:
        self.events.append("started")

    def call_finished(self, record: CallRecord) -> None:
        self.events.append("finished")


def test_observers_stop_at_a_refusal_and_survive_a_broken_one(
        caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    observers = Observers([Refuse(), recorder])
    with pytest.raises(ToolError):
        observers.call_started(CallRecord(tool="t"))
    assert recorder.events == []
    with caplog.at_level(logging.ERROR, logger="facade.serve.observe"):
        Observers([Broken(), recorder]).call_finished(CallRecord(tool="t"))
    assert recorder.events == ["finished"]
    assert "observer Broken failed" in caplog.text


def test_observers_for_puts_the_rate_limit_first(write_curation: Write) -> None:
    facade = load(write_curation(HEAD + "server: {rate_limit: {per_minute: 1, burst: 1}}\n"
                                 + TOOLS), environ={})
    chain = observers_for(facade, Recorder()).observers
    assert [type(o).__name__ for o in chain] == ["RateLimiter", "Recorder", "BreakerLog",
                                                 "AuditLog"]
    assert [type(o).__name__ for o in observers_for(load(write_curation(HEAD + TOOLS),
                                                         environ={})).observers] == [
        "BreakerLog", "AuditLog"]


# --- metrics ----------------------------------------------------------------------------

def _samples(metrics: Metrics) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.render().decode().splitlines() if not line.startswith("#")}


def test_metrics_follow_calls_attempts_and_the_breaker() -> None:
    metrics = Metrics(["get_item"], ["http://backend/v1"])
    record = CallRecord(tool="get_item", backend_status=200, response_bytes=10)
    metrics.call_started(record)
    assert _samples(metrics)['facade_tool_calls_in_flight{tool="get_item"}'] == 1
    metrics.backend_response("get_item", 503, 0.01)
    metrics.retry("get_item", "503")
    metrics.backend_response("get_item", 200, 0.02)
    metrics.call_finished(record)
    metrics.call_finished(CallRecord(tool="get_item", outcome="rejected"))  # never started
    metrics.breaker_changed("http://backend/v1", "open")
    samples = _samples(metrics)
    assert samples['facade_tool_calls_in_flight{tool="get_item"}'] == 0
    assert samples['facade_tool_calls_total{outcome="ok",tool="get_item"}'] == 1
    assert samples['facade_tool_calls_total{outcome="rejected",tool="get_item"}'] == 1
    assert samples['facade_backend_responses_total{status="503",tool="get_item"}'] == 1
    assert samples['facade_backend_retries_total{reason="503",tool="get_item"}'] == 1
    assert samples['facade_backend_response_bytes_total{tool="get_item"}'] == 10
    assert samples['facade_tool_call_duration_seconds_count{tool="get_item"}'] == 2
    assert samples['facade_circuit_breaker_state{backend="http://backend/v1",'
                   'facade_circuit_breaker_state="open"}'] == 1
    assert not any(k.endswith("_created") for k in samples)


# --- inbound auth -----------------------------------------------------------------------

def _facade(write_curation: Write) -> Any:
    return load(write_curation(HEAD + TOOLS), environ={})


@pytest.mark.parametrize(("environ", "message"), [
    ({}, "server.auth.tokens[0].token_env: environment variable 'T1' is not set"),
    ({"T1": "short"}, "the token in 'T1' is shorter than 16 characters"),
    ({"T1": TOKEN, "T2": TOKEN}, "server.auth.tokens[1].token_env: 'b' has the same token as "
     "'a'; give each its own"),
])
def test_static_tokens_must_be_set_long_and_distinct(write_curation: Write,
                                                     environ: dict[str, str],
                                                     message: str) -> None:
    settings = AuthSettings(tokens=(StaticToken("a", "T1"), StaticToken("b", "T2")))
    with pytest.raises(InboundAuthError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_auth(_facade(write_curation), settings, "http://127.0.0.1:8000", environ)


def test_static_token_metadata_names_the_resource_and_scopes(write_curation: Write) -> None:
    settings = AuthSettings(tokens=(StaticToken("a", "T1"),))
    auth = build_auth(_facade(write_curation), settings, "https://mcp.example.com",
                      {"T1": TOKEN})
    app = Starlette(routes=auth.get_routes("/mcp"))
    response = TestClient(app).get("/.well-known/oauth-protected-resource/mcp")
    assert response.json() == {"resource": "https://mcp.example.com/mcp",
                               "bearer_methods_supported": ["header"],
                               "scopes_supported": ["inventory.read"],
                               "resource_name": "Inventory API"}


async def test_first_matching_verifier_wins(write_curation: Write) -> None:
    settings = AuthSettings(tokens=(StaticToken("a", "T1", ("x",)),), jwt=JWTSettings(
        "http://127.0.0.1:9/jwks.json", "https://idp.test/", ("aud",)))
    auth = build_auth(_facade(write_curation), settings, "https://mcp.example.com",
                      {"T1": TOKEN})
    token = await auth.verify_token(TOKEN)
    assert token is not None and (token.client_id, token.scopes) == ("a", ["x"])
    assert await auth.verify_token("x" * 40) is None  # not static; no JWKS answers: refused


async def test_tool_scopes_hide_and_refuse(write_curation: Write) -> None:
    facade = _facade(write_curation)
    server = build_server(facade, environ={})
    server.add_middleware(ToolScopes({t.name: frozenset(t.scopes) for t in facade.tools}))
    async with Client(server) as client:  # in memory: no token, so no scopes
        assert [t.name for t in await client.list_tools()] == ["get_category"]
        result = await client.call_tool("get_item", {"sku": "SKU-1"}, raise_on_error=False)
        assert result.is_error
        assert result.content[0].text == (  # type: ignore[union-attr]
            "Tool 'get_item' needs the scope(s) inventory.read, which this client's token "
            "does not grant; ask the operator for a token with them")


# --- readiness, draining, the front -----------------------------------------------------

async def test_readiness_reasons_and_draining(write_curation: Write) -> None:
    facade = _facade(write_curation)
    upstream = SimpleNamespace(is_open_client=True, breaker_state="closed")
    clock = Clock()
    lifecycle = Lifecycle(build_server(facade, environ={}), {"": upstream},  # type: ignore[dict-item]
                          len(facade.tools), grace=5, clock=clock)
    assert await lifecycle.not_ready() == []
    upstream.breaker_state = "open"  # the backend is down: not this replica's fault
    assert await lifecycle.not_ready() == []
    upstream.is_open_client = False
    assert await lifecycle.not_ready() == ["backend client closed"]
    lifecycle.tool_count = 3
    assert "tools not registered" in await lifecycle.not_ready()
    assert not lifecycle.drained()
    lifecycle.in_flight = 1
    lifecycle.begin_drain()
    assert (await lifecycle.not_ready())[0] == "shutting down"
    assert not lifecycle.drained() and lifecycle.remaining() == 5
    lifecycle.in_flight = 0
    assert lifecycle.drained()
    lifecycle.in_flight = 1
    clock.now += 5
    assert lifecycle.drained() and lifecycle.remaining() == 0


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/mcp", {}, 200),
    ("/mcp", {"Host": "evil.example"}, 421),
    ("/mcp", {"Host": "mcp.example.com"}, 200),
    ("/mcp", {"Host": "facade.prod.svc.cluster.local"}, 200),
    ("/mcp", {"Origin": "http://evil.example"}, 403),
    ("/mcp", {"Origin": "https://chat.example.com"}, 200),
    ("/mcp", {"Origin": "http://127.0.0.1:3000"}, 200),
    ("/.well-known/oauth-protected-resource/mcp", {"Host": "evil.example"}, 421),
    ("/healthz", {"Host": "10.0.0.7:8000"}, 200),
    ("/readyz", {"Host": "10.0.0.7:8000", "Origin": "http://evil.example"}, 200),
    ("/metrics", {"Host": "10.0.0.7:8000"}, 200),
])
async def test_front_checks_host_and_origin_except_on_probes(
        path: str, headers: dict[str, str], status: int) -> None:
    settings = ServeSettings(allowed_hosts=("mcp.example.com", "facade.*.svc.cluster.local"),
                             allowed_origins=("https://chat.example.com",))
    lifecycle = SimpleNamespace(in_flight=0, draining_since=None)
    front = _Front(_ok, lifecycle, settings)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=front, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        assert (await c.get(path, headers=headers)).status_code == status
    assert lifecycle.in_flight == 0


async def test_front_sheds_past_max_in_flight_with_503_and_retry_after() -> None:
    settings = ServeSettings(limits=ServeLimits(max_in_flight=3))
    lifecycle = SimpleNamespace(in_flight=3, draining_since=None)  # three under way
    metrics = Metrics()
    front = _Front(_ok, lifecycle, settings, metrics)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=front, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        shed = await c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        probe = await c.get("/readyz")
        lifecycle.in_flight = 2
        admitted = await c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert (shed.status_code, shed.headers["retry-after"]) == (503, "1")
    assert shed.json()["error"]["message"] == (
        "facade is overloaded: 3 requests are under way on this replica; retry in 1 s")
    assert probe.status_code == 200  # probes are never shed
    assert admitted.status_code == 200 and lifecycle.in_flight == 2
    assert _samples(metrics)["facade_requests_shed_total"] == 1


@pytest.mark.parametrize("how", [["--allow-unauthenticated"], []])
def test_allow_unauthenticated_reaches_the_server(write_curation: Write,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  how: list[str]) -> None:
    """The flag (or FACADE_ALLOW_UNAUTHENTICATED=1) lets `serve` go on to listen publicly."""
    started: list[tuple[str, int]] = []
    monkeypatch.setattr("facade.serve.http.run", lambda app, lifecycle, host, port, limits:
                        started.append((host, port)))
    env = {} if how else {"FACADE_ALLOW_UNAUTHENTICATED": "1"}
    result = CliRunner().invoke(main, ["serve", "--config", str(write_curation(HEAD + TOOLS)),
                                       "--transport", "http", "--host", "0.0.0.0", "--port",
                                       "8123", *how], env=env)
    assert result.exit_code == 0, result.output
    assert started == [("0.0.0.0", 8123)]
    assert "serving 2 tool(s) at http://0.0.0.0:8123/mcp (no inbound auth)" in \
        messages(result.stderr, "facade.serve")


def test_a_compiled_artifact_keeps_auth_scopes_and_audit_args(write_curation: Write) -> None:
    """`facade build` output must not drop what guards the HTTP server."""
    from facade.loading.artifact import build, load_fast

    path = write_curation(HEAD + "server:\n  auth:\n    tokens: [{principal: ops, token_env: "
                          "OPS_TOKEN}]\n  rate_limit: {per_minute: 5}\n" + TOOLS)
    artifact = path.with_name("curation.artifact.json")
    build(path, artifact, environ={})
    fast, why = load_fast(path, artifact=artifact, environ={})
    assert why is None
    slow = load(path, environ={})
    assert fast.serving == slow.serving and fast.serving.auth is not None
    assert [(t.scopes, t.audit_arguments) for t in fast.tools] == [
        (t.scopes, t.audit_arguments) for t in slow.tools] == [
        (("inventory.read",), ("sku",)), ((), ())]


def test_secrets_registered_in_a_scope_are_forgotten_after_it() -> None:
    from facade.call.scrub import scrub, secrets_scope

    outer, inner = f"outer-{uuid.uuid4().hex}", f"inner-{uuid.uuid4().hex}"
    register_secrets([outer])
    with secrets_scope():
        register_secrets([inner])
        assert scrub(f"{outer} {inner}") == "*** ***"
    assert scrub(f"{outer} {inner}") == f"*** {inner}"
