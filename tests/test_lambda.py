"""AWS Lambda: `facade.lambda_handler` invoked with API Gateway v2 (HTTP API) events built
here, in front of the example inventory backend on 127.0.0.1.

MCP round trips (initialize, tools/list, tools/call) through the handler, the static
bearer tokens of `server.auth` (missing or wrong: 401; right: served), the Host check,
start-up from a `facade build` artifact, and the refusals at start-up.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import inventory_backend
import pytest

import facade.lambda_handler
import facade.loading.single
from facade.lambda_handler import FacadeHandler, LambdaStartError
from facade.loading.artifact import build

from conftest import TOKEN

HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
PUBLIC_URL = f"https://{HOST}"
AGENT_TOKEN = "agent-" + secrets.token_hex(16)
PROTOCOL = "2025-06-18"
CURATION = f"""
    version: 1
    spec: specs/inventory.yaml
    server:
      name: inventory
      auth:
        public_url: {PUBLIC_URL}
        tokens: [{{principal: agent, token_env: FACADE_TOKEN_AGENT}}]
      allowed_origins: [https://chat.example.com]
    backend:
      base_url: ${{INVENTORY_URL}}
      headers: {{X-Caller: facade-lambda}}
      auth: {{bearer_env: INVENTORY_TOKEN}}
    redact: [internal_cost, "*_token"]
    tools:
      get_item:
        operation: getItem
        params:
          itemId: {{rename: sku}}
          X-Tenant: {{value: acme}}
          expand: {{value: supplier}}
        response: {{redact: [supplier.contact]}}
      list_items:
        operation: listItems
        params: {{X-Tenant: {{value: acme}}}}
"""


class Context:
    """The parts of a Lambda context object that Mangum reads (none, besides existing)."""

    function_name = "facade"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def http_api_event(body: Any, *, token: str | None = AGENT_TOKEN, host: str = HOST,
                   method: str = "POST", path: str = "/mcp", origin: str | None = None
                   ) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as Lambda receives it."""
    headers = {"host": host, "content-type": "application/json",
               "accept": "application/json, text/event-stream",
               "mcp-protocol-version": PROTOCOL, "x-forwarded-proto": "https",
               "x-forwarded-for": "203.0.113.7"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if origin is not None:
        headers["origin"] = origin
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": host,
            "domainPrefix": "abc123", "requestId": "JKJaXmPLvHcESHA=", "routeKey": "$default",
            "stage": "$default", "time": "02/Dec/2026:17:00:00 +0000",
            "timeEpoch": 1796230800000,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "test"}},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def rpc(method: str, params: dict[str, Any] | None = None, id: int | None = 1
        ) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        message["id"] = id
    if params is not None:
        message["params"] = params
    return message


def invoke(handler: Callable[..., dict[str, Any]], body: Any, **event: Any
           ) -> tuple[int, dict[str, str], str]:
    response = handler(http_api_event(body, **event), Context())
    return response["statusCode"], response["headers"], response["body"]


@pytest.fixture
def config(write_curation: Callable[[str], Path]) -> Path:
    return write_curation(CURATION)


@pytest.fixture
def env(example_env: dict[str, str]) -> dict[str, str]:
    return {**example_env, "FACADE_TOKEN_AGENT": AGENT_TOKEN, "FACADE_ARTIFACT": "off"}


@pytest.fixture
def handler(config: Path, env: dict[str, str]) -> Iterator[FacadeHandler]:
    built = FacadeHandler(config, environ=env)
    yield built
    built.close()


def initialize(handler: FacadeHandler) -> dict[str, Any]:
    status, _, body = invoke(handler, rpc("initialize", {
        "protocolVersion": PROTOCOL, "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}))
    assert status == 200, body
    status, _, _ = invoke(handler, rpc("notifications/initialized", id=None))
    assert status == 202
    result: dict[str, Any] = json.loads(body)["result"]
    return result


def test_initialize_list_and_call_round_trips(handler: FacadeHandler) -> None:
    inventory_backend.Handler.seen.clear()
    assert initialize(handler)["serverInfo"]["name"] == "inventory"

    status, headers, body = invoke(handler, rpc("tools/list", id=2))
    assert status == 200 and headers["content-type"] == "application/json"
    tools = {t["name"]: t for t in json.loads(body)["result"]["tools"]}
    assert set(tools) == {"get_item", "list_items"}
    assert set(tools["get_item"]["inputSchema"]["properties"]) == {"sku"}

    status, _, body = invoke(handler, rpc("tools/call", {
        "name": "get_item", "arguments": {"sku": "SKU-1042"}}, id=3))
    assert status == 200, body
    result = json.loads(body)["result"]
    assert not result["isError"]
    item = result["structuredContent"]
    assert item["sku"] == "SKU-1042" and item["supplier"]["name"] == "Acme Tools"
    for leak in ("internal_cost", "sync_token", "contact", "sales@acme", TOKEN, AGENT_TOKEN):
        assert leak not in body
    # The backend got the call with the façade's credential, not the agent's.
    [seen] = [s for s in inventory_backend.Handler.seen if s["path"].endswith("/SKU-1042")]
    assert seen["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert seen["headers"]["X-Caller"] == "facade-lambda"

    # Later invocations reuse the execution environment's app and backend client.
    status, _, body = invoke(handler, rpc("tools/call", {
        "name": "list_items", "arguments": {"limit": 2}}, id=4))
    assert status == 200, body
    assert [i["sku"] for i in json.loads(body)["result"]["structuredContent"]["items"]] == [
        "SKU-1042", "SKU-1043"]


@pytest.mark.parametrize("token", [None, "wrong-" + "0" * 26, AGENT_TOKEN.upper()],
                         ids=["missing", "wrong", "wrong-case"])
def test_a_missing_or_invalid_token_is_refused_with_401(handler: FacadeHandler,
                                                        token: str | None) -> None:
    inventory_backend.Handler.seen.clear()
    status, headers, body = invoke(handler, rpc("tools/call", {
        "name": "get_item", "arguments": {"sku": "SKU-1042"}}), token=token)
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer ")
    assert f'resource_metadata="{PUBLIC_URL}/.well-known/oauth-protected-resource/mcp"' \
        in headers["www-authenticate"]
    assert AGENT_TOKEN not in body + json.dumps(headers)
    assert inventory_backend.Handler.seen == []  # nothing reached the backend


def test_a_valid_token_is_served(handler: FacadeHandler) -> None:
    status, _, body = invoke(handler, rpc("tools/list"), token=AGENT_TOKEN)
    assert status == 200 and json.loads(body)["result"]["tools"]


@pytest.mark.parametrize(("origin", "status"), [
    ("https://evil.example.com", 403), (PUBLIC_URL, 200), ("https://chat.example.com", 200)])
def test_a_browser_origin_not_allowed_is_forbidden(handler: FacadeHandler, origin: str,
                                                   status: int) -> None:
    # The Host is API Gateway's own (it routes by Host), so only the Origin is checked.
    assert invoke(handler, rpc("tools/list"), origin=origin)[0] == status


def test_the_probes_answer_through_the_handler(handler: FacadeHandler) -> None:
    status, _, body = invoke(handler, None, method="GET", path="/readyz", token=None)
    assert (status, body) == (200, "ready\n")


def test_starts_from_the_artifact_without_reading_the_spec(
        config: Path, env: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    artifact = tmp_path / "built" / "curation.artifact.json"
    build(config, artifact, environ=env)

    def no_spec(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the spec was read despite a current artifact")

    monkeypatch.setattr(facade.loading.single, "load_spec", no_spec)
    built = FacadeHandler(config, environ={**env, "FACADE_ARTIFACT": str(artifact)})
    try:
        status, _, body = invoke(built, rpc("tools/list"))
        assert status == 200
        assert {t["name"] for t in json.loads(body)["result"]["tools"]} == {
            "get_item", "list_items"}
    finally:
        built.close()


def test_the_module_handler_reads_facade_config(
        config: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FACADE_CONFIG", str(config))
    monkeypatch.setattr(facade.lambda_handler, "_instance", None)
    response = facade.lambda_handler.handler(http_api_event(rpc("tools/list")), Context())
    instance = facade.lambda_handler._instance
    assert instance is not None
    try:
        assert response["statusCode"] == 200
        again = facade.lambda_handler.handler(http_api_event(rpc("tools/list")), Context())
        assert again["body"] == response["body"]
        assert facade.lambda_handler._instance is instance  # built once per environment
    finally:
        instance.close()


def without_auth(text: str) -> str:
    start = text.index("  auth:\n")
    return text[:start] + text[text.index("  allowed_origins:"):]


def test_no_inbound_auth_is_refused_unless_allowed(
        write_curation: Callable[[str], Path], env: dict[str, str]) -> None:
    config = write_curation(without_auth(CURATION))
    with pytest.raises(LambdaStartError, match="refusing to serve without inbound auth.*"
                       "FACADE_ALLOW_UNAUTHENTICATED=1"):
        FacadeHandler(config, environ=env)
    built = FacadeHandler(config, environ={**env, "FACADE_ALLOW_UNAUTHENTICATED": "1"})
    try:
        status, _, _ = invoke(built, rpc("tools/list"), token=None)
        assert status == 200
    finally:
        built.close()


def test_auth_without_a_public_url_is_refused(write_curation: Callable[[str], Path],
                                              env: dict[str, str]) -> None:
    config = write_curation(CURATION.replace(f"public_url: {PUBLIC_URL}\n", ""))
    with pytest.raises(LambdaStartError, match=r"server\.auth\.public_url is not set"):
        FacadeHandler(config, environ=env)


def test_an_unset_token_variable_is_a_start_error_naming_it(config: Path,
                                                            env: dict[str, str]) -> None:
    del env["FACADE_TOKEN_AGENT"]
    with pytest.raises(LambdaStartError, match="'FACADE_TOKEN_AGENT' is not set"):
        FacadeHandler(config, environ=env)


def test_a_curation_that_does_not_load_is_a_start_error(
        write_curation: Callable[[str], Path], env: dict[str, str]) -> None:
    config = write_curation(CURATION.replace("operation: getItem", "operation: getItm"))
    with pytest.raises(LambdaStartError, match=r"the curation does not load:\n.*curation\.yaml"
                       r":\d+:\d+: tools\.get_item\.operation: unknown operation 'getItm'"):
        FacadeHandler(config, environ=env)
