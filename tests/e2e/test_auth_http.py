"""End to end: inbound auth on a real `facade serve --transport http` child.

The curation accepts two static bearer tokens and JWTs signed by a key whose JWKS is served
from 127.0.0.1. Driven by raw HTTP (401/403/421, RFC 9728 metadata), by the fastmcp client
and by the official `mcp` client, with and without a token."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import httpx2
import inventory_backend
import pytest
from fastmcp import Client as FastMCPClient
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.server.auth.providers.jwt import RSAKeyPair
from joserfc import jwk
from log_support import audit
from mcp.client import Client as SDKClient
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from .conftest import (
    ROOT,
    assert_no_leaks,
    child_env,
    free_port,
    sent_since,
    stop,
    wait_for_port,
)

pytestmark = pytest.mark.integration

ISSUER = "https://idp.test/"
PUBLIC_URL = "https://mcp.test"
AUDIENCE = f"{PUBLIC_URL}/mcp"
READER = "reader-token-0123456789abcdef"
BURSTER = "burster-token-0123456789abcdef"
AUDITOR = "auditor-token-0123456789abcdef"
METERED = "metered-token-0123456789abcdef"
RESOURCE_METADATA = f"{PUBLIC_URL}/.well-known/oauth-protected-resource/mcp"
CURATION = """
    version: 1
    spec: specs/inventory.yaml
    server:
      name: inventory
      auth:
        public_url: {public_url}
        tokens:
          - {{principal: reader, token_env: FACADE_TOKEN_READER, scopes: [inventory.read]}}
          - {{principal: burster, token_env: FACADE_TOKEN_BURST, scopes: [inventory.read]}}
          - {{principal: auditor, token_env: FACADE_TOKEN_AUDIT, scopes: [inventory.read]}}
          - {{principal: metered, token_env: FACADE_TOKEN_METERED, scopes: [inventory.read]}}
        jwt:
          jwks_uri: http://127.0.0.1:{jwks_port}/jwks.json
          issuer: {issuer}
          audience: {audience}
      rate_limit: {{per_minute: 2, burst: 6}}  # no refill to speak of during the tests
    backend:
      base_url: ${{INVENTORY_URL}}
      headers: {{X-Caller: facade}}
      auth: {{bearer_env: INVENTORY_TOKEN}}
    redact: [internal_cost, "*_token"]
    tools:
      get_item:
        operation: getItem
        scopes: [inventory.read]
        audit_args: [sku]
        params:
          itemId: {{rename: sku}}
          X-Tenant: {{value: acme}}
          expand: {{value: supplier}}
        response: {{redact: [supplier.contact]}}
      get_item_stock:
        operation: GET /items/{{itemId}}/stock
        scopes: [inventory.stock]
        params:
          itemId: {{rename: sku}}
          X-Tenant: {{value: acme}}
      get_category:
        operation: getCategory
        params:
          categoryId: {{rename: category_id}}
"""


@dataclass(frozen=True)
class AuthServer:
    base: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen[bytes]
    log: Path
    key: RSAKeyPair

    @property
    def url(self) -> str:
        return self.base + "/mcp"

    def jwt(self, *, audience: str = AUDIENCE, issuer: str = ISSUER, subject: str = "alice",
            scopes: tuple[str, ...] = ("inventory.read", "inventory.stock"),
            expires_in: int = 300, key: RSAKeyPair | None = None) -> str:
        return (key or self.key).create_token(subject=subject, issuer=issuer,
                                              audience=audience, scopes=list(scopes),
                                              expires_in_seconds=expires_in, kid="k1")


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

    server = ThreadingHTTPServer(("127.0.0.1", 0), JWKS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_project(directory: Path, curation: str) -> Path:
    """A curation plus a copy of the example spec in `directory`."""
    specs = directory / "specs" / "components"
    specs.mkdir(parents=True, exist_ok=True)
    for name in ["inventory.yaml", "components/parameters.yaml", "components/schemas.yaml"]:
        (directory / "specs" / name).write_text((ROOT / "specs" / name).read_text())
    path = directory / "curation.yaml"
    path.write_text(textwrap.dedent(curation).lstrip("\n"))
    return path


@pytest.fixture(scope="module")
def auth_server(backend_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[AuthServer]:
    key = RSAKeyPair.generate()
    jwks = _jwks_server(key)
    workdir = tmp_path_factory.mktemp("facade-auth")
    config = write_project(workdir, CURATION.format(
        public_url=PUBLIC_URL, jwks_port=jwks.server_address[1], issuer=ISSUER,
        audience=AUDIENCE))
    port, log = free_port(), workdir / "server.log"
    # One principal per test that counts calls: each has its own rate-limit bucket, so no
    # test depends on what another one did to the module's server.
    env = child_env(backend_url, FACADE_TOKEN_READER=READER, FACADE_TOKEN_BURST=BURSTER,
                    FACADE_TOKEN_AUDIT=AUDITOR, FACADE_TOKEN_METERED=METERED)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "facade", "serve", "--config", str(config), "--transport",
             "http", "--port", str(port)], env=env, cwd=workdir, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(proc, port, log)
        yield AuthServer(f"http://127.0.0.1:{port}", proc, log, key)
    finally:
        stop(proc)
        jwks.shutdown()
        jwks.server_close()


def initialize(server: AuthServer, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(server.url, trust_env=False, timeout=10, headers={
        "Accept": "application/json, text/event-stream", **headers}, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}})


def call_tool(server: AuthServer, token: str, name: str, arguments: dict[str, Any]
              ) -> dict[str, Any]:
    response = httpx.post(server.url, trust_env=False, timeout=10, headers={
        "Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": "2025-11-25"}, json={
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def audit_lines(server: AuthServer) -> list[dict[str, Any]]:
    return audit(server.log.read_text(errors="replace"))


def audited(server: AuthServer, **match: Any) -> list[dict[str, Any]]:
    """The audit entries with these values, once there is at least one (the line is
    written as the call ends; this waits for it, bounded)."""
    deadline = time.monotonic() + 10
    while True:
        found = [e for e in audit_lines(server)
                 if all(e.get(k) == v for k, v in match.items())]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def metrics(server: AuthServer) -> dict[str, float]:
    text = httpx.get(server.base + "/metrics", trust_env=False).text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_no_token_is_401_with_a_challenge_naming_the_metadata(auth_server: AuthServer) -> None:
    response = initialize(auth_server)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert f'resource_metadata="{RESOURCE_METADATA}"' in challenge
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code when no credentials


@pytest.mark.parametrize("token", ["not-a-valid-token-at-all", "Bearer"])
def test_a_bad_token_is_401_invalid_token(auth_server: AuthServer, token: str) -> None:
    response = initialize(auth_server, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert token not in response.text


def test_protected_resource_metadata(auth_server: AuthServer) -> None:
    response = httpx.get(auth_server.base + "/.well-known/oauth-protected-resource/mcp",
                         trust_env=False)
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["resource"] == AUDIENCE
    assert metadata["authorization_servers"] == [ISSUER]
    assert metadata["scopes_supported"] == ["inventory.read", "inventory.stock"]
    assert metadata["bearer_methods_supported"] == ["header"]


@pytest.mark.parametrize(("case", "claims"), [
    ("wrong audience", {"audience": "https://other.test/mcp"}),
    ("wrong issuer", {"issuer": "https://evil.test/"}),
    ("expired", {"expires_in": -60}),
    ("signed by another key", {"key": RSAKeyPair.generate()}),
])
def test_jwts_must_match_issuer_audience_expiry_and_key(auth_server: AuthServer, case: str,
                                                       claims: dict[str, Any]) -> None:
    assert initialize(auth_server, auth_server.jwt(**claims)).status_code == 401, case


def test_valid_credentials_are_accepted(auth_server: AuthServer) -> None:
    assert initialize(auth_server, READER).status_code == 200
    assert initialize(auth_server, auth_server.jwt()).status_code == 200


@pytest.mark.parametrize(("headers", "status"), [
    ({"Host": "evil.example"}, 421),
    ({"Origin": "http://evil.example"}, 403),
])
def test_host_and_origin_are_checked_before_auth(auth_server: AuthServer,
                                                 headers: dict[str, str], status: int) -> None:
    assert initialize(auth_server, READER, **headers).status_code == status
    assert initialize(auth_server, None, **headers).status_code == status


def test_probes_need_neither_a_token_nor_a_known_host(auth_server: AuthServer) -> None:
    for path, body in [("/healthz", "ok\n"), ("/readyz", "ready\n")]:
        response = httpx.get(auth_server.base + path, headers={"Host": "10.1.2.3:8000"},
                             trust_env=False)
        assert (response.status_code, response.text) == (200, body)


async def test_fastmcp_client_sees_only_the_tools_its_scopes_allow(
        auth_server: AuthServer, example_env: dict[str, str]) -> None:
    async with FastMCPClient(auth_server.url, auth=READER) as client:
        names = {t.name for t in await client.list_tools()}
        assert names == {"get_item", "get_category"}  # get_item_stock needs inventory.stock
        result = await client.call_tool("get_item", {"sku": "SKU-1042"})
        assert result.structured_content is not None
        assert result.structured_content["sku"] == "SKU-1042"
        assert_no_leaks(json.dumps(result.structured_content))
        seen = len(inventory_backend.Handler.seen)
        refused = await client.call_tool("get_item_stock", {"sku": "SKU-1042"},
                                         raise_on_error=False)
        assert refused.is_error
        assert refused.content[0].text == (  # type: ignore[union-attr]
            "Tool 'get_item_stock' needs the scope(s) inventory.stock, which this client's "
            "token does not grant; ask the operator for a token with them")
        assert len(inventory_backend.Handler.seen) == seen


def test_a_call_refused_for_a_missing_scope_is_audited_and_counted(
        auth_server: AuthServer) -> None:
    forbidden = 'facade_tool_calls_total{outcome="forbidden",tool="get_item_stock"}'
    before = metrics(auth_server).get(forbidden, 0.0)
    result = call_tool(auth_server, AUDITOR, "get_item_stock", {"sku": "SKU-1042"})
    assert result["isError"] is True
    [entry] = audited(auth_server, principal="auditor", tool="get_item_stock")
    assert entry["event"] == "tool_call"
    assert entry["outcome"] == "forbidden"
    assert (entry["backend_status"], entry["bytes"], entry["retries"]) == (None, 0, 0)
    assert "arguments" not in entry
    assert metrics(auth_server)[forbidden] == before + 1


def _recording_client(statuses: list[int], **kwargs: Any) -> httpx2.AsyncClient:
    """An httpx2 client (what both MCP clients use) that notes every response status."""

    async def note(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    return httpx2.AsyncClient(**kwargs, event_hooks={"response": [note]})


async def test_fastmcp_client_without_a_token_is_refused(auth_server: AuthServer) -> None:
    statuses: list[int] = []
    transport = StreamableHttpTransport(
        auth_server.url, httpx_client_factory=lambda **kw: _recording_client(statuses, **kw))
    with pytest.raises(Exception):  # noqa: B017 - the client's error type is its own affair
        async with FastMCPClient(transport) as client:
            await client.list_tools()
    assert statuses and set(statuses) == {401}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_official_mcp_client_with_a_jwt(auth_server: AuthServer,
                                              example_env: dict[str, str], mode: str) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {auth_server.jwt()}"})
    async with http, SDKClient(streamable_http_client(auth_server.url, http_client=http),
                               mode=mode) as client:
        listing = await client.list_tools()
        assert {t.name for t in listing.tools} == {"get_item", "get_item_stock",
                                                  "get_category"}
        result = await client.call_tool("get_item_stock", {"sku": "SKU-1043"})
        assert result.is_error is False
        assert result.structured_content is not None
        assert result.structured_content["result"][0]["warehouse"] == "north"


async def test_official_mcp_client_without_a_token_is_refused(auth_server: AuthServer) -> None:
    statuses: list[int] = []
    http = _recording_client(statuses)
    with pytest.raises(Exception):  # noqa: B017
        async with http, SDKClient(streamable_http_client(auth_server.url, http_client=http),
                                   mode="legacy") as client:
            await client.list_tools()
    assert statuses and set(statuses) == {401}


def test_rate_limit_per_principal(auth_server: AuthServer, example_env: dict[str, str]
                                  ) -> None:
    rejected = 'facade_tool_calls_total{outcome="rejected",tool="get_category"}'
    before = metrics(auth_server).get(rejected, 0.0)
    results = [call_tool(auth_server, BURSTER, "get_category", {"category_id": 1})
               for _ in range(7)]
    assert [r["isError"] for r in results] == [False] * 6 + [True]
    message = results[-1]["content"][0]["text"]
    assert message.startswith("Rate limit exceeded: at most 2 tool calls per minute (bursts "
                              "of 6) per client; retry in ")
    # Another principal is not affected.
    assert call_tool(auth_server, AUDITOR, "get_category", {"category_id": 1})["isError"] is False
    # The refusal is audited and counted.
    [entry] = audited(auth_server, principal="burster", outcome="rejected")
    assert (entry["tool"], entry["backend_status"]) == ("get_category", None)
    assert metrics(auth_server)[rejected] == before + 1


def test_audit_log_and_request_id(auth_server: AuthServer, example_env: dict[str, str]
                                  ) -> None:
    seen = inventory_backend.Handler.seen
    before = len(seen)
    result = call_tool(auth_server, AUDITOR, "get_item", {"sku": "SKU-1044"})
    assert result["isError"] is False
    backend_request = sent_since(seen, before)
    assert backend_request["path"] == "/v1/items/SKU-1044"
    request_id = {k.lower(): v for k, v in backend_request["headers"].items()}["x-request-id"]
    [entry] = audited(auth_server, request_id=request_id)
    assert entry["event"] == "tool_call"
    assert entry["principal"] == "auditor"
    assert entry["tool"] == "get_item"
    assert entry["outcome"] == "ok"
    assert entry["backend_status"] == 200
    assert entry["bytes"] > 0 and entry["latency_ms"] > 0
    assert entry["retries"] == 0
    assert entry["arguments"] == {"sku": "SKU-1044"}
    # get_category has no audit_args: its argument values are never logged.
    result = call_tool(auth_server, AUDITOR, "get_category", {"category_id": 2})
    assert result["isError"] is False
    request_id = {k.lower(): v for k, v in sent_since(seen, before + 1)["headers"].items()
                  }["x-request-id"]
    [entry] = audited(auth_server, request_id=request_id)
    assert (entry["tool"], entry["outcome"]) == ("get_category", "ok")
    assert "arguments" not in entry
    log = auth_server.log.read_text(errors="replace")
    for secret in (READER, BURSTER, AUDITOR, METERED, example_env["INVENTORY_TOKEN"]):
        assert secret not in log
    assert "eyJ" not in log  # no JWT (their header always starts so) was logged either


def test_metrics(auth_server: AuthServer, example_env: dict[str, str]) -> None:
    before = metrics(auth_server)
    assert call_tool(auth_server, METERED, "get_item", {"sku": "SKU-1042"})["isError"] is False
    assert call_tool(auth_server, METERED, "get_item", {"sku": "SKU-9999"})["isError"] is True
    after = metrics(auth_server)

    def grew(name: str) -> float:
        return after[name] - before.get(name, 0.0)

    assert grew('facade_tool_calls_total{outcome="ok",tool="get_item"}') == 1
    assert grew('facade_tool_calls_total{outcome="backend_error",tool="get_item"}') == 1
    assert grew('facade_backend_responses_total{status="200",tool="get_item"}') == 1
    assert grew('facade_backend_responses_total{status="404",tool="get_item"}') == 1
    assert grew('facade_tool_call_duration_seconds_count{tool="get_item"}') == 2
    assert after['facade_tool_calls_in_flight{tool="get_item"}'] == 0
    states = {k: v for k, v in after.items() if k.startswith("facade_circuit_breaker_state{")}
    assert [k for k, v in states.items() if v == 1] == [
        k for k in states if k.endswith('facade_circuit_breaker_state="closed"}')]
    assert sum(states.values()) == 1
