"""Arguments from the model are untrusted: every hostile value is refused with a message
naming the argument, before any request is sent; benign ones reach the backend exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp.exceptions import ToolError
from fastmcp.utilities.tests import asgi_client
from faulty_backend import FaultyHandler
from fastmcp import Client
from hostile_support import ENV, TOKEN, build, client_for, error_of, write_facade

from facade.call.checks import json_size
from facade.call.encoding import EncodedRequest
from facade.call.upstream import Upstream
from facade.loading.loader import load
from facade.serve.observe import observers_for
from facade.serve.server import build_server

seen = FaultyHandler.seen


@pytest.fixture
def url(faulty_url: str) -> str:
    return faulty_url


HOSTILE = [
    # types are strict: nothing is coerced
    ({"limit": True}, "limit: True is not of type 'integer'"),
    ({"limit": "5&x=1"}, "limit: '5&x=1' is not of type 'integer'"),
    ({"limit": "5"}, "limit: '5' is not of type 'integer'"),
    ({"limit": 5.5}, "limit: 5.5 is not of type 'integer'"),
    ({"limit": 0}, "limit: 0 is less than the minimum of 1"),
    ({"limit": 101}, "limit: 101 is greater than the maximum of 100"),
    ({"sort": "random"}, "sort: 'random' is not one of ['asc', 'desc']"),
    ({"code": "abc"}, "code: 'abc' does not match"),
    ({"name": "x" * 11}, "name: 'xxxxxxxxxxx' is too long"),
    ({"admin": True}, "unknown argument(s) 'admin'"),
    ({"tenant": "evil"}, "unknown argument(s) 'tenant'"),  # fixed: not the agent's
    ({"Authorization": "Bearer mine"}, "unknown argument(s) 'Authorization'"),
    ({"X-Forwarded-For": "10.0.0.1"}, "unknown argument(s) 'X-Forwarded-For'"),
    # header values cannot carry new header lines
    ({"X-Trace": "a\r\nX-Admin: 1"}, "'X-Trace': control characters"),
    ({"X-Trace": "a\nb"}, "'X-Trace': control characters"),
    ({"X-Trace": "caf\u00e9"}, "'X-Trace': a header value must be ASCII"),
    # an exploded query object cannot set the other query parameters
    ({"filter": {"tenant": "evil"}}, "'filter': key(s) tenant would set other query"),
    ({"filter": {"LIMIT": "1000"}}, "'filter': key(s) LIMIT would set other query"),
    ({"filter": {"color": 1}}, "filter.color: 1 is not of type 'string'"),
]


@pytest.mark.parametrize(("extra", "message"), HOSTILE,
                         ids=[repr(e)[:40] for e, _ in HOSTILE])
async def test_hostile_arguments_are_refused_before_any_request(
        tmp_path: Path, url: str, extra: dict[str, Any], message: str) -> None:
    async with client_for(tmp_path, url) as client:
        before = len(seen)
        result = await client.call_tool("get_item", {"id": "SKU-1", **extra},
                                        raise_on_error=False)
        text = error_of(result)
        assert text.startswith("Invalid arguments for get_item: ")
        assert message in text
        assert len(seen) == before


PATH_ATTACKS = {
    "empty": "",
    "dot": ".",
    "dotdot": "..",
    "dots": "...",
    "slash": "a/b",
    "leading-slash": "/admin",
    "backslash": "a\\b",
    "semicolon": "a;jsessionid=x",
    "query": "a?admin=1",
    "fragment": "a#b",
    "encoded-dots": "%2e%2e",
    "encoded-dots-upper": "%2E%2E",
    "double-encoded-dots": "%252e%252e",
    "triple-encoded-dots": "%25252e%25252e",
    "encoded-slash": "a%2Fb",
    "double-encoded-slash": "a%252Fb",
    "encoded-backslash": "..%5c",
    "fullwidth-dots": "\uff0e\uff0e",
    "fullwidth-slash": "a\uff0fb",
    "one-dot-leader": "\u2024\u2024",
    "nul": "a\x00b",
    "newline": "a\nb",
    "del": "a\x7fb",
    "bidi-override": "a\u202eb",
    "zero-width": "a\u200bb",
    "overlong": "x" * 257,
}


@pytest.mark.parametrize("value", PATH_ATTACKS.values(), ids=PATH_ATTACKS.keys())
async def test_path_values_cannot_change_the_endpoint(tmp_path: Path, url: str, value: str
                                                      ) -> None:
    async with client_for(tmp_path, url) as client:
        before = len(seen)
        result = await client.call_tool("get_item", {"id": value}, raise_on_error=False)
        text = error_of(result)
        assert "Invalid arguments for get_item" in text and "id" in text
        assert len(seen) == before


async def test_curation_can_allow_slash_but_never_dot_segments(tmp_path: Path, url: str
                                                               ) -> None:
    tools = {"get_item": {"operation": "getItem", "params": {
        "tenant": {"value": "acme"}, "id": {"allow": ["/"], "max_length": 300}}}}
    async with client_for(tmp_path, url, tools=tools) as client:
        before = len(seen)
        result = await client.call_tool("get_item", {"id": "group/project"})
        assert len(seen) == before + 1
        assert seen[-1]["raw_path"].startswith("/api/items/group%2Fproject?")
        result = await client.call_tool("get_item", {"id": "x" * 300})
        assert not result.is_error
        for value in ("a/../b", "../admin", "a/%2e%2e/b", "a/\uff0e\uff0e"):
            before = len(seen)
            result = await client.call_tool("get_item", {"id": value}, raise_on_error=False)
            assert "contains the dot segment '..'" in error_of(result)
            assert len(seen) == before


async def test_benign_arguments_reach_the_backend_exactly(tmp_path: Path, url: str) -> None:
    facade, server = build(tmp_path, url)
    tool = next(t for t in facade.tools if t.name == "get_item")
    props = tool.input_schema["properties"]
    assert "tenant" not in props and "Authorization" not in props
    assert "X-Forwarded-For" not in props
    assert props["id"]["maxLength"] == 256
    warnings = [w.message for w in facade.warnings]
    assert any("'Authorization'" in w and "dropped" in w for w in warnings)
    assert any("'X-Forwarded-For'" in w and "dropped" in w for w in warnings)
    from fastmcp import Client
    async with Client(server) as client:
        before = len(seen)
        await client.call_tool("get_item", {
            "id": "SKU 1", "limit": 5, "X-Trace": "t-1", "X-Static": "from-agent",
            "filter": {"color": "red"}})
    assert len(seen) == before + 1
    got = seen[-1]
    assert got["raw_path"].split("?")[0] == "/api/items/SKU%201"
    assert got["query"] == {"limit": ["5"], "color": ["red"], "tenant": ["acme"]}
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert headers["x-trace"] == "t-1"
    assert headers["x-static"] == "from-operator"  # the operator's header wins
    assert headers["authorization"] == f"Bearer {TOKEN}"  # the credential is applied last
    assert len(headers["x-request-id"]) == 32


async def test_inbound_headers_are_forwarded_only_when_allow_listed(tmp_path: Path, url: str
                                                                    ) -> None:
    inbound = {"Authorization": "Bearer caller-token", "Cookie": "sid=caller",
               "X-Api-Key": "caller-key", "X-Forwarded-For": "10.1.1.1",
               "X-Tenant-Id": "t-42", "X-Other": "nope"}
    _, server = build(tmp_path, url, forward_headers=["X-Tenant-Id"])
    async with asgi_client(server, headers=inbound) as client:
        before = len(seen)
        await client.call_tool("behave", {"mode": "echo"})
    assert len(seen) == before + 1
    headers = {k.lower(): v for k, v in seen[-1]["headers"].items()}
    assert headers["x-tenant-id"] == "t-42"
    assert headers["authorization"] == f"Bearer {TOKEN}"
    for name in ("cookie", "x-api-key", "x-forwarded-for", "x-other"):
        assert name not in headers

    _, server = build(tmp_path, url)  # no allow-list: nothing inbound gets through
    async with asgi_client(server, headers=inbound) as client:
        before = len(seen)
        await client.call_tool("behave", {"mode": "echo"})
    assert len(seen) == before + 1
    headers = {k.lower() for k in seen[-1]["headers"]}
    assert not headers & {"x-tenant-id", "cookie", "x-api-key", "x-forwarded-for", "x-other"}


@pytest.mark.parametrize("name", ["Authorization", "cookie", "Host", "X-Forwarded-Host",
                                  "X-Api-Key", "Proxy-Authorization", "Connection"])
def test_credential_and_routing_headers_cannot_be_forwarded(tmp_path: Path, url: str,
                                                            name: str) -> None:
    from facade.errors import CurationError
    with pytest.raises(CurationError) as caught:
        build(tmp_path, url, forward_headers=[name])
    assert f"header {name!r} cannot be forwarded" in caught.value.format()


@pytest.mark.parametrize("path", [
    "/items/../../admin", "/items/%2e%2e/admin", "http://evil.example/items",
    "/items/%2E%2E%2Fadmin", "/../api2/items",
])
async def test_requests_outside_the_base_url_are_never_sent(tmp_path: Path, url: str,
                                                             path: str) -> None:
    """Even if encoding let something through, the built URL is checked before sending."""
    facade, _ = build(tmp_path, url)
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={})

    upstream = Upstream(facade.backend, environ=ENV, transport=httpx.MockTransport(handler))
    tool = facade.tools[0]
    with pytest.raises(ToolError, match="outside the configured backend"):
        await upstream.send(tool, EncodedRequest(method="GET", path=path))
    assert calls == []
    await upstream.aclose()


async def test_a_cookie_one_call_received_is_never_sent_with_another(tmp_path: Path,
                                                                    url: str) -> None:
    """The backend client keeps no cookie jar in play: calls stay independent."""
    async with client_for(tmp_path, url) as client:
        before = len(seen)
        await client.call_tool("behave", {"mode": "setcookie"})
        await client.call_tool("behave", {"mode": "echo"})
    assert [r["mode"] for r in seen[before:]] == ["setcookie", "echo"]
    headers = {k.lower(): v for k, v in seen[-1]["headers"].items()}
    assert "cookie" not in headers
    assert headers["user-agent"].startswith("facade/")


# --- size: huge values are refused short, and never echoed ------------------------------

async def test_a_huge_argument_is_refused_by_size_without_being_echoed(
        tmp_path: Path, url: str) -> None:
    async with client_for(tmp_path, url) as client:
        before = len(seen)
        result = await client.call_tool("get_item", {"id": "SKU-1", "limit": "9" * 1_000_000},
                                        raise_on_error=False)
    assert error_of(result) == ("Invalid arguments for get_item: they take more than 65,536 "
                                "bytes as JSON, the most this tool accepts")
    assert len(seen) == before


async def test_the_argument_cap_is_per_tool(tmp_path: Path, url: str) -> None:
    tools = {"get_item": {"operation": "getItem", "params": {"tenant": {"value": "acme"}},
                          "max_argument_bytes": 100}}
    async with client_for(tmp_path, url, tools=tools) as client:
        small = await client.call_tool("get_item", {"id": "SKU-1"}, raise_on_error=False)
        big = await client.call_tool("get_item", {"id": "x" * 200}, raise_on_error=False)
    assert not small.is_error
    assert "more than 100 bytes as JSON" in error_of(big)


async def test_errors_quote_only_a_short_excerpt_of_a_value(tmp_path: Path, url: str) -> None:
    async with client_for(tmp_path, url) as client:
        result = await client.call_tool("get_item", {"id": "SKU-1", "limit": "9" * 60_000},
                                        raise_on_error=False)
    text = error_of(result)
    assert text.startswith("Invalid arguments for get_item: limit: '99999999")
    assert text.endswith("… (60,002 characters) is not of type 'integer'")
    assert len(text) < 200


async def test_many_errors_are_counted_not_listed(tmp_path: Path, url: str) -> None:
    tools = {"get_item": {"operation": "getItem", "params": {"tenant": {"value": "acme"}}}}
    async with client_for(tmp_path, url, tools=tools) as client:
        result = await client.call_tool(
            "get_item", {"id": "SKU-1", "filter": {f"k{i}": i for i in range(500)}},
            raise_on_error=False)
    text = error_of(result)
    assert text.count("is not of type 'string'") == 5 and text.endswith("and 495 more")


def test_json_size_counts_utf8_and_stops_past_the_limit() -> None:
    assert json_size({"a": "é"}, 100) == len(json.dumps({"a": "é"}, ensure_ascii=False)
                                              .encode()) - 1  # no ": " counted, one ","
    assert json_size(["x" * 10, 1, None], 1000) == 2 + 3 + 12 + 5 + 5
    huge = ["y" * 1000] * 10_000
    assert 64 < json_size(huge, 64) < 20_000  # stopped at the list's length, not at 10 MB


async def test_calls_refused_for_bad_arguments_count_toward_the_rate_limit(
        tmp_path: Path, url: str) -> None:
    path = write_facade(tmp_path, url)
    text = path.read_text() + "server:\n  rate_limit: {per_minute: 1, burst: 3}\n"
    path.write_text(text)
    facade = load(path, environ=dict(ENV))
    async with Client(build_server(facade, environ=ENV, observer=observers_for(facade))
                      ) as client:
        for _ in range(3):
            bad = await client.call_tool("get_item", {"id": "SKU-1", "limit": "x"},
                                         raise_on_error=False)
            assert "is not of type 'integer'" in error_of(bad)
        good = await client.call_tool("get_item", {"id": "SKU-1"}, raise_on_error=False)
    assert error_of(good).startswith("Rate limit exceeded: at most 1 tool calls per minute")
