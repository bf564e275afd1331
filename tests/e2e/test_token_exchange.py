"""End to end: per-user identity to the backend through RFC 8693 token exchange.

Four processes, all on 127.0.0.1: the test (which signs the inbound JWTs with a local key,
serves their JWKS, and runs the orders backend), a real OAuth 2.0 authorization server
(`oidc-provider` v9 under Node, tests/e2e/idp/server.mjs, with the token-exchange grant
registered through `registerGrantType`), and `facade serve --transport http`.

Why the test signs the inbound tokens: issuing user tokens from oidc-provider needs an
interactive login flow. The authorization server instead trusts the test's issuer, as a
real one trusts a federated identity provider: it checks each subject token's signature
against the test's JWKS, its issuer and its audience (the façade), then mints a JWT access
token for the orders backend with the user's `sub`. The backend checks that token against
the authorization server's JWKS and answers with the user's own orders only.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.server.auth.providers.jwt import RSAKeyPair
from joserfc import jwk, jwt
from joserfc.jwk import KeySet

from .conftest import child_env, free_port, stop, wait_for_port

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                 reason="the authorization server runs under Node (npm)")]

IDP_DIR = Path(__file__).resolve().parent / "idp"
ISSUER = "https://idp.test/"
PUBLIC_URL = "https://mcp.test"
AUDIENCE = f"{PUBLIC_URL}/mcp"
RESOURCE = "https://orders.test"
CLIENT_SECRET = "client-secret-0123456789abcdef"
CLIENT_KEY = RSAKeyPair.generate()  # the façade's own key, for private_key_jwt
# How the façade authenticates to the token service: the main stack signs client
# assertions with a key from a file, the outage stack sends a client secret from a file.
_KEYS = " " * 10  # the indentation of `token_exchange`'s keys in CURATION
CLIENTS = {
    "private_key_jwt": f"client_id: facade-pkjwt\n{_KEYS}client_auth: private_key_jwt\n"
                       f"{_KEYS}private_key_file: secrets/facade-key.pem\n"
                       f"{_KEYS}private_key_id: facade-1",
    "client_secret_basic": f"client_id: facade\n"
                           f"{_KEYS}client_secret_file: secrets/idp-client-secret",
}
ORDERS = {"alice": [{"id": "A-1", "total": 12.5}, {"id": "A-2", "total": 40.0}],
          "bob": [{"id": "B-1", "total": 99.0}]}
SPEC = """
    openapi: 3.0.3
    info: {title: Orders, version: "1"}
    paths:
      /orders:
        get:
          operationId: listOrders
          summary: The caller's orders.
          responses:
            "200":
              description: ok
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      owner: {type: string}
                      orders:
                        type: array
                        items:
                          type: object
                          properties: {id: {type: string}, total: {type: number}}
      /orders/{orderId}:
        get:
          operationId: getOrder
          summary: One of the caller's orders.
          parameters:
            - {name: orderId, in: path, required: true, schema: {type: string}}
          responses:
            "200":
              description: ok
              content:
                application/json:
                  schema:
                    type: object
                    properties: {id: {type: string}, total: {type: number}}
      /refunds:
        get:
          operationId: listRefunds
          summary: The refund queue, for support staff.
          responses:
            "200":
              description: ok
              content:
                application/json:
                  schema: {type: object, properties: {refunds: {type: array}}}
"""
CURATION = """
    version: 1
    spec: orders.yaml
    server:
      name: orders
      shutdown_grace: 1
      auth:
        public_url: {public_url}
        jwt:
          jwks_uri: http://127.0.0.1:{jwks_port}/jwks.json
          issuer: {issuer}
          audience: {audience}
    backend:
      base_url: ${{ORDERS_URL}}
      timeout: 3
      timeouts: {{connect: 1, read: 1}}
      retries: {{attempts: 1, backoff: 0.05}}
      circuit_breaker: {{failures: 2, reset_after: 600}}
      identity_headers: {{X-User-Id: sub, X-User-Groups: groups}}
      auth:
        token_exchange:
          token_endpoint: ${{IDP_URL}}/token
          {client}
          resource: {resource}
          scope: [orders.read]
          refresh_before: 2
    tools:
      list_orders: {{operation: listOrders}}
      get_order:
        operation: getOrder
        params: {{orderId: {{rename: order_id}}}}
      list_refunds:
        operation: listRefunds
        claims: {{groups: [support]}}
"""


@dataclass
class Backend:
    """The orders API: trusts only the authorization server's tokens for its audience."""

    idp_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    _keys: KeySet | None = None

    def keys(self) -> KeySet:
        if self._keys is None:
            self._keys = KeySet.import_key_set(
                httpx.get(self.idp_url + "/jwks", trust_env=False, timeout=5).json())
        return self._keys

    def claims_of(self, authorization: str) -> dict[str, Any]:
        """The claims of a valid access token for this backend, else {}."""
        try:
            token = jwt.decode(authorization.removeprefix("Bearer "), self.keys())
            jwt.JWTClaimsRegistry(aud={"essential": True, "value": RESOURCE},
                                  exp={"essential": True}).validate(token.claims)
        except Exception:  # noqa: BLE001 - any invalid token is simply refused
            return {}
        return token.claims


def _backend_server(backend: Backend) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            authorization = self.headers.get("Authorization", "")
            claims = backend.claims_of(authorization)
            user = claims.get("sub")
            backend.seen.append({"path": self.path, "authorization": authorization,
                                 "user": user, "client": claims.get("client_id"),
                                 "x-user-id": self.headers.get("X-User-Id"),
                                 "x-user-groups": self.headers.get("X-User-Groups")})
            if user is None:
                return self._answer(401, {"error": "invalid token"})
            mine = ORDERS.get(user, [])
            if self.path == "/orders":
                return self._answer(200, {"owner": user, "orders": mine})
            if self.path == "/refunds":
                return self._answer(200, {"refunds": []})
            found = [o for o in mine if self.path == f"/orders/{o['id']}"]
            return self._answer(200, found[0]) if found else self._answer(404, {})

        def _answer(self, status: int, data: dict[str, Any]) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _serve(Handler)


def _jwks_server(key: RSAKeyPair) -> ThreadingHTTPServer:
    public = jwk.import_key(key.public_key, "RSA").as_dict(private=False)
    body = json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}).encode()

    class JWKS(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200 if self.path == "/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _serve(JWKS)


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _install_idp() -> None:
    """`npm ci` in tests/e2e/idp when its node_modules are missing (.ci/run does it too)."""
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=IDP_DIR, check=True, timeout=300)


@dataclass
class Stack:
    url: str  # the façade's /mcp
    facade: subprocess.Popen[bytes]
    idp: subprocess.Popen[bytes]
    idp_url: str
    backend: Backend
    key: RSAKeyPair
    log: Path
    idp_log: Path

    def token(self, user: str, groups: tuple[str, ...] = ()) -> str:
        return self.key.create_token(subject=user, issuer=ISSUER, audience=AUDIENCE,
                                     scopes=["orders.read"], expires_in_seconds=600, kid="k1",
                                     additional_claims={"groups": list(groups)})

    def exchanges(self) -> dict[str, int]:
        counts: dict[str, int] = httpx.get(self.idp_url + "/test/exchanges", trust_env=False,
                                           timeout=5).json()
        return counts

    def seen_by(self, user: str) -> list[dict[str, Any]]:
        return [s for s in self.backend.seen if s["x-user-id"] == user]

    def metrics(self) -> str:
        return httpx.get(self.url.removesuffix("/mcp") + "/metrics", trust_env=False,
                         timeout=5).text


def _start(tmp: Path, client_auth: str) -> Iterator[Stack]:
    _install_idp()
    key = RSAKeyPair.generate()
    jwks = _jwks_server(key)
    idp_port = free_port()
    idp_url = f"http://127.0.0.1:{idp_port}"
    idp_log = tmp / "idp.log"
    with open(idp_log, "wb") as out:
        idp = subprocess.Popen(["node", str(IDP_DIR / "server.mjs")], cwd=IDP_DIR, env={
            "PATH": os.environ["PATH"], "IDP_PORT": str(idp_port), "BACKEND_RESOURCE": RESOURCE,
            "SUBJECT_JWKS_URI": f"http://127.0.0.1:{jwks.server_address[1]}/jwks.json",
            "SUBJECT_ISSUER": ISSUER, "SUBJECT_AUDIENCE": AUDIENCE,
            "CLIENT_SECRET": CLIENT_SECRET, "DENIED": "mallory", "SHORT_LIVED": "carol",
            "SHORT_TTL": "4", "CLIENT_JWKS": json.dumps({"keys": [{
                **jwk.import_key(CLIENT_KEY.public_key, "RSA").as_dict(private=False),
                "kid": "facade-1", "alg": "RS256", "use": "sig"}]})}, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    backend = Backend(idp_url)
    orders = _backend_server(backend)
    (tmp / "orders.yaml").write_text(textwrap.dedent(SPEC).lstrip())
    (tmp / "secrets").mkdir()
    (tmp / "secrets" / "idp-client-secret").write_text(CLIENT_SECRET + "\n")
    config = tmp / "curation.yaml"
    (tmp / "secrets" / "facade-key.pem").write_text(CLIENT_KEY.private_key.get_secret_value())
    config.write_text(textwrap.dedent(CURATION.format(
        public_url=PUBLIC_URL, jwks_port=jwks.server_address[1], issuer=ISSUER,
        audience=AUDIENCE, resource=RESOURCE, client=CLIENTS[client_auth])).lstrip())
    port, log = free_port(), tmp / "facade.log"
    env = child_env("unused", ORDERS_URL=f"http://127.0.0.1:{orders.server_address[1]}",
                    IDP_URL=idp_url)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "facade", "serve", "--config", str(config), "--transport",
             "http", "--port", str(port)], env=env, cwd=tmp, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(idp, idp_port, idp_log)
        wait_for_port(proc, port, log)
        yield Stack(f"http://127.0.0.1:{port}/mcp", proc, idp, idp_url, backend, key, log,
                    idp_log)
    finally:
        stop(proc)
        if idp.poll() is None:
            idp.send_signal(signal.SIGCONT)  # the outage test may have stopped it
        stop(idp)
        for server in (jwks, orders):
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from _start(tmp_path_factory.mktemp("exchange"), "private_key_jwt")


@pytest.fixture
def outage_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own: the outage opens the breakers, which the others must not see."""
    yield from _start(tmp_path, "client_secret_basic")


async def call(stack: Stack, token: str, tool: str, arguments: dict[str, Any] | None = None
               ) -> Any:
    async with Client(stack.url, auth=token) as client:
        return await client.call_tool(tool, arguments or {}, raise_on_error=False)


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def assert_no_tokens(stack: Stack, *texts: str) -> None:
    """No token (inbound, exchanged) nor the client secret in what a client or log saw."""
    secrets = {CLIENT_SECRET} | {s["authorization"].removeprefix("Bearer ")
                                 for s in stack.backend.seen if s["authorization"]}
    for text in (*texts, stack.log.read_text(errors="replace")):
        for secret in secrets:
            assert secret not in text, "a token reached a client or the log"
        assert "eyJ" not in text, "something JWT-shaped reached a client or the log"


async def test_each_user_sees_only_their_own_orders(stack: Stack) -> None:
    alice, bob = stack.token("alice"), stack.token("bob")
    mine = await call(stack, alice, "list_orders")
    theirs = await call(stack, bob, "list_orders")
    assert mine.structured_content == {"owner": "alice", "orders": ORDERS["alice"]}
    assert theirs.structured_content == {"owner": "bob", "orders": ORDERS["bob"]}
    stolen = await call(stack, alice, "get_order", {"order_id": "B-1"})
    assert stolen.is_error and "404" in text_of(stolen)
    own = await call(stack, alice, "get_order", {"order_id": "A-2"})
    assert own.structured_content == ORDERS["alice"][1]
    for user, inbound in (("alice", alice), ("bob", bob)):
        seen = stack.seen_by(user)
        assert seen and all(s["user"] == user for s in seen)  # the backend's own token
        assert all(s["client"] == "facade-pkjwt" for s in seen)  # via private_key_jwt
        assert all(inbound not in s["authorization"] for s in seen)  # never passed through
        assert all(s["x-user-groups"] == "" for s in seen)
    assert_no_tokens(stack, text_of(mine), text_of(theirs), text_of(stolen), text_of(own))


async def test_a_token_is_exchanged_once_per_principal_within_its_lifetime(stack: Stack
                                                                          ) -> None:
    dave = stack.token("dave")
    results = await asyncio.gather(*(call(stack, dave, "list_orders") for _ in range(4)))
    results.append(await call(stack, stack.token("dave"), "list_orders"))  # a new inbound token
    assert all(not r.is_error for r in results)
    assert stack.exchanges()["dave"] == 1
    tokens = {s["authorization"] for s in stack.seen_by("dave")}
    assert len(tokens) == 1 and len(stack.seen_by("dave")) == 5
    assert 'facade_token_exchanges_total{backend="' in stack.metrics()


async def test_an_expired_exchanged_token_is_renewed(stack: Stack) -> None:
    """carol's tokens live 4 s and are renewed 2 s early (`refresh_before: 2`, which leaves a
    second for the whole-second `iat` and the call itself): the next call after that
    exchanges again, and the backend, which refuses expired tokens, never sees one."""
    carol = stack.token("carol")
    first = await call(stack, carol, "list_orders")
    assert not first.is_error, text_of(first)
    issued = stack.seen_by("carol")[0]["authorization"]
    deadline = time.monotonic() + 30
    while stack.seen_by("carol")[-1]["authorization"] == issued:
        assert time.monotonic() < deadline, "the exchanged token was never renewed"
        result = await call(stack, carol, "list_orders")
        assert not result.is_error, text_of(result)
    assert stack.exchanges()["carol"] >= 2
    assert all(s["user"] == "carol" for s in stack.seen_by("carol"))


async def test_a_user_the_token_service_refuses_gets_a_clear_error(stack: Stack) -> None:
    result = await call(stack, stack.token("mallory"), "list_orders")
    text = text_of(result)
    assert result.is_error
    assert "not allowed" in text and "token service" in text
    assert "invalid_grant" not in text and "grant request" not in text  # its body stays out
    assert not stack.seen_by("mallory")  # the backend was never called
    assert 'outcome="refused"' in stack.metrics()
    assert_no_tokens(stack, text)


async def test_claim_conditions_hide_a_tool_from_callers_who_fail_them(stack: Stack) -> None:
    async with Client(stack.url, auth=stack.token("alice")) as client:
        names = {t.name for t in await client.list_tools()}
        refused = await client.call_tool("list_refunds", {}, raise_on_error=False)
    assert names == {"list_orders", "get_order"}
    assert refused.is_error and "Unknown tool" in text_of(refused)
    async with Client(stack.url, auth=stack.token("sam", groups=("staff", "support"))) as client:
        names = {t.name for t in await client.list_tools()}
        allowed = await client.call_tool("list_refunds", {})
    assert names == {"list_orders", "get_order", "list_refunds"}
    assert allowed.structured_content == {"refunds": []}
    assert stack.seen_by("sam")[-1]["x-user-groups"] == "staff,support"


async def test_an_outage_of_the_token_service_fails_fast_with_the_breaker(
        outage_stack: Stack) -> None:
    """The token service hangs (SIGSTOP): the first calls fail at the read timeout, not
    later; after `failures: 2` the breaker opens and calls fail without trying."""
    stack = outage_stack
    warm = await call(stack, stack.token("alice"), "list_orders")
    assert not warm.is_error
    stack.idp.send_signal(signal.SIGSTOP)
    try:
        failures = [await call(stack, stack.token(user), "list_orders")
                    for user in ("u1", "u2")]
        for result in failures:
            assert result.is_error and "token service did not answer" in text_of(result)
        fast = await call(stack, stack.token("u3"), "list_orders")
        assert fast.is_error and "circuit breaker open" in text_of(fast)
        cached = await call(stack, stack.token("alice"), "list_orders")  # still cached
        assert cached.structured_content == {"owner": "alice", "orders": ORDERS["alice"]}
    finally:
        stack.idp.send_signal(signal.SIGCONT)
    metrics = stack.metrics()
    assert 'outcome="failed"} 2.0' in metrics and 'outcome="unavailable"} 1.0' in metrics
    assert not [s for s in stack.backend.seen if s["x-user-id"] in ("u1", "u2", "u3")]
    assert {s["client"] for s in stack.backend.seen} == {"facade"}  # client_secret_basic
    assert_no_tokens(stack, *(text_of(r) for r in (*failures, fast)))
