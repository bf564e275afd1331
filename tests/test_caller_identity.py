"""The call path with per-user identity: a curated tool, its `Upstream` and the exchanger,
against `httpx.MockTransport` backends, with the caller's verified token set as the MCP
SDK sets it. What reaches the backend, and what wins over what."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp.exceptions import ToolError
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from facade import load
from facade.call.tool import CuratedTool
from facade.call.upstream import Upstream
from facade.tools import Facade

Write = Callable[..., Path]
CURATION = """\
version: 1
spec: specs/inventory.yaml
server:
  auth:
    jwt: {{jwks_uri: "http://127.0.0.1:9/jwks.json", issuer: "https://idp.test/",
          audience: "https://mcp.test/mcp"}}
backend:
  base_url: "http://backend.test/v1"
  headers: {{X-User-Id: static-value}}
  forward_headers: [X-User-Groups]
  identity_headers: {{X-User-Id: sub, X-User-Groups: groups}}
  auth:
{auth}
tools:
  get_category:
    operation: getCategory
  get_category_for_support:
    operation: getCategory
    claims: {{groups: [support]}}
"""
EXCHANGE = """\
    token_exchange:
      token_endpoint: https://idp.test/token
      client_id: facade
      client_secret_env: IDP_SECRET
      audience: inventory
"""


def _load(path: Path) -> Facade:
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        return load(path.name)
    finally:
        os.chdir(here)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def backend(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"id": 1, "name": "Tools"})

    def idp(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"access_token": "backend-token-for-caller",
                                         "token_type": "Bearer", "expires_in": 300})


def as_caller(token: AccessToken | None) -> None:
    """The verified caller, as the MCP SDK's auth middleware sets it. The test's own
    context holds it (each test runs in its own task), so it never reaches another test."""
    auth_context_var.set(AuthenticatedUser(token) if token is not None else None)


def alice(**claims: Any) -> AccessToken:
    return AccessToken(token="inbound-token-of-alice-0123", client_id="alice", scopes=[],
                       subject="alice", claims={"sub": "alice", "iss": "https://idp.test/",
                                                **claims})


def tool_of(facade: Facade, name: str, recorder: Recorder, environ: dict[str, str]
            ) -> CuratedTool:
    upstream = Upstream(facade.backend, environ=environ,
                        transport=httpx.MockTransport(recorder.backend),
                        identity_transport=httpx.MockTransport(recorder.idp))
    return CuratedTool.from_definition(next(t for t in facade.tools if t.name == name),
                                       upstream)


async def test_the_backend_gets_the_exchanged_token_and_the_callers_claims(
        write_curation: Write) -> None:
    facade = _load(write_curation(CURATION.format(auth=EXCHANGE)))
    recorder = Recorder()
    tool = tool_of(facade, "get_category", recorder, {"IDP_SECRET": "idp-secret-value"})
    as_caller(alice(groups=["staff"]))
    result = await tool.run({"categoryId": 1})
    assert result.structured_content == {"id": 1, "name": "Tools"}
    exchange, call = recorder.requests
    assert str(exchange.url) == "https://idp.test/token"
    assert b"subject_token=inbound-token-of-alice-0123" in exchange.content
    assert call.headers["authorization"] == "Bearer backend-token-for-caller"
    # The claims win over the static header of the same name (and would over a forwarded one).
    assert (call.headers["x-user-id"], call.headers["x-user-groups"]) == ("alice", "staff")
    await tool.run({"categoryId": 1})
    assert len(recorder.requests) == 3  # the second call used the cached token


async def test_without_a_caller_the_call_is_refused_before_the_backend(
        write_curation: Write) -> None:
    facade = _load(write_curation(CURATION.format(auth=EXCHANGE)))
    recorder = Recorder()
    tool = tool_of(facade, "get_category", recorder, {"IDP_SECRET": "idp-secret-value"})
    as_caller(None)
    with pytest.raises(ToolError, match="needs a signed-in caller"):
        await tool.run({"categoryId": 1})
    assert recorder.requests == []


async def test_claim_conditions_are_checked_on_the_call_path_too(
        write_curation: Write) -> None:
    """Resources run their tool's call path, without the tools/list middleware."""
    facade = _load(write_curation(CURATION.format(auth=EXCHANGE)))
    recorder = Recorder()
    tool = tool_of(facade, "get_category_for_support", recorder,
                   {"IDP_SECRET": "idp-secret-value"})
    as_caller(alice(groups=["staff"]))
    with pytest.raises(ToolError, match="does not meet the tool's claim conditions"):
        await tool.run({"categoryId": 1})
    assert recorder.requests == []
    as_caller(alice(groups=["staff", "support"]))
    assert (await tool.run({"categoryId": 1})).structured_content == {"id": 1, "name": "Tools"}


async def test_identity_headers_beside_a_rotating_service_credential(
        write_curation: Write) -> None:
    path = write_curation(CURATION.format(auth="    bearer_file: secrets/token"))
    (path.parent / "secrets").mkdir()
    (path.parent / "secrets" / "token").write_text("service-token-one\n")
    facade = _load(path)
    recorder = Recorder()
    tool = tool_of(facade, "get_category", recorder, {})
    as_caller(alice())
    await tool.run({"categoryId": 1})
    staged = path.parent / "secrets" / "token.new"
    staged.write_text("service-token-two\n")
    os.replace(staged, path.parent / "secrets" / "token")
    await tool.run({"categoryId": 1})
    first, second = recorder.requests
    assert first.headers["authorization"] == "Bearer service-token-one"
    assert second.headers["authorization"] == "Bearer service-token-two"
    assert first.headers["x-user-id"] == "alice" and first.headers["x-user-groups"] == ""


async def test_a_static_token_is_never_sent_to_the_token_service(write_curation: Write
                                                                 ) -> None:
    facade = _load(write_curation(CURATION.format(auth=EXCHANGE)))
    recorder = Recorder()
    tool = tool_of(facade, "get_category", recorder, {"IDP_SECRET": "idp-secret-value"})
    # What fastmcp's StaticTokenVerifier makes of a `server.auth.tokens` entry: no issuer.
    as_caller(AccessToken(token="static-token-0123456789", client_id="ci-bot", scopes=[],
                          claims={"client_id": "ci-bot", "sub": "ci-bot", "scopes": []}))
    with pytest.raises(ToolError, match="a static token cannot be exchanged"):
        await tool.run({"categoryId": 1})
    assert recorder.requests == []


async def test_over_stdio_a_subject_token_env_stands_in_for_the_caller(write_curation: Write
                                                                       ) -> None:
    path = write_curation("""\
version: 1
spec: specs/inventory.yaml
backend:
  base_url: "http://backend.test/v1"
  auth:
    token_exchange:
      token_endpoint: https://idp.test/token
      client_id: facade
      client_secret_env: IDP_SECRET
      audience: inventory
      subject_token_env: MY_TOKEN
tools: {get_category: {operation: getCategory}}
""")
    recorder = Recorder()
    tool = tool_of(_load(path), "get_category", recorder,
                   {"IDP_SECRET": "idp-secret-value", "MY_TOKEN": "my-own-token-0123"})
    as_caller(None)
    await tool.run({"categoryId": 1})
    exchange, call = recorder.requests
    assert b"subject_token=my-own-token-0123" in exchange.content
    assert call.headers["authorization"] == "Bearer backend-token-for-caller"
