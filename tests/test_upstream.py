"""The HTTP layer against respx: requests built right, every failure a curated ToolError."""

from __future__ import annotations

import dataclasses
import gzip
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastmcp.exceptions import ToolError

from facade import load
from facade.call.tool import CuratedTool
from facade.call.upstream import MissingCredentialError, Upstream
from facade.serve.server import build_server
from facade.tools import Facade

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://backend.test/v1"


@pytest.fixture
def facade(monkeypatch: pytest.MonkeyPatch) -> Facade:
    monkeypatch.setenv("INVENTORY_URL", BASE)
    return load(ROOT / "curation.yaml")


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def _tool(facade: Facade, name: str, **env: str) -> CuratedTool:
    upstream = Upstream(facade.backend, environ={"INVENTORY_TOKEN": "s3cret", **env})
    definition = next(t for t in facade.tools if t.name == name)
    return CuratedTool.from_definition(definition, upstream)


ITEM: dict[str, Any] = {"id": 1, "sku": "SKU-1", "name": "Drill", "internal_cost": 3.5,
                        "sync_token": "t", "supplier": {"name": "A", "contact": {"email": "x"}}}


async def test_request_carries_fixed_params_credentials_and_static_headers(
        facade: Facade, mock: respx.MockRouter) -> None:
    route = mock.get("/items/SKU-1").respond(json=ITEM)
    result = await _tool(facade, "get_item").run({"sku": "SKU-1"})
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["X-Tenant"] == "acme"
    assert request.headers["X-Caller"] == "facade"
    assert request.url.params["expand"] == "supplier"
    assert result.structured_content == {"id": 1, "sku": "SKU-1", "name": "Drill",
                                         "supplier": {"name": "A"}}
    assert "s3cret" not in str(result) and "internal_cost" not in str(result)


async def test_invalid_arguments_send_nothing(facade: Facade, mock: respx.MockRouter) -> None:
    route = mock.get(url__regex=r".*").respond(json=ITEM)
    for bad, message in [({"sku": 5}, "5 is not of type 'string'"),
                         ({}, "'sku' is a required argument"),
                         ({"sku": "SKU-1", "X-Tenant": "evil"}, "unknown argument(s) 'X-Tenant'"),
                         ({"sku": "../admin"}, "does not match")]:
        with pytest.raises(ToolError, match=r"Invalid arguments for get_item: .*"
                           + message.replace("(", r"\(").replace(")", r"\)")):
            await _tool(facade, "get_item").run(bad)
    assert not route.called


@pytest.mark.parametrize(
    ("status", "text"),
    [(400, "check them"), (401, "credentials were refused"), (404, "nothing found"),
     (429, "rate limited"), (500, "the backend failed"), (503, "retry later")],
    ids=["400", "401", "404", "429", "500", "503"],
)
async def test_error_status_is_curated_and_body_not_echoed(
        facade: Facade, mock: respx.MockRouter, status: int, text: str) -> None:
    mock.get("/items/SKU-1").respond(status, json={"error": "password=hunter2"})
    with pytest.raises(ToolError, match=rf"The backend answered {status} .* for GET "
                       rf"/items/{{sku}} \(tool get_item\): .*{text}") as info:
        await _tool(facade, "get_item").run({"sku": "SKU-1"})
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("exc", "message"),
    [(httpx.ConnectError, "unreachable"), (httpx.ConnectTimeout, "connect timeout after 5s"),
     (httpx.ReadTimeout, "read timeout after 10s"), (httpx.RemoteProtocolError, "broke the"),
     (httpx.ReadError, "broke the connection"),
     (httpx.CloseError, "failed in transport \\(CloseError\\)")],
    ids=["connect", "connect-timeout", "read-timeout", "protocol", "read", "close"],
)
async def test_transport_failures_become_tool_errors(
        facade: Facade, mock: respx.MockRouter, exc: type[Exception], message: str) -> None:
    mock.get("/items/SKU-1").mock(side_effect=exc("boom http://user:pw@x"))
    with pytest.raises(ToolError, match=message) as info:
        await _tool(facade, "get_item").run({"sku": "SKU-1"})
    assert "pw@" not in str(info.value)


def test_every_transport_error_is_mapped(facade: Facade) -> None:
    """Like httpx's own exhaustiveness test: no TransportError escapes unmapped."""
    from facade.call.failures import DeadlineExceeded, transport_failure

    definition = facade.tools[0]
    subclasses: list[type[httpx.TransportError]] = []
    todo: list[type[httpx.TransportError]] = [httpx.TransportError]
    while todo:
        cls = todo.pop()
        subclasses.append(cls)
        todo.extend(cls.__subclasses__())
    expected = [(httpx.ConnectTimeout, "did not accept a connection in time"),
                (httpx.TimeoutException, "in time ("),
                (httpx.ConnectError, "is unreachable"),
                ((httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError),
                 "broke the connection"),
                (httpx.DecodingError, "could not be decoded")]
    for cls in subclasses:
        error = transport_failure(definition, 10, cls("x"))
        assert isinstance(error, ToolError)
        assert "GET /items" in str(error)
        # the most specific translation wins; anything else names its class
        wanted = next((text for kinds, text in expected if issubclass(cls, kinds)),
                      f"failed in transport ({cls.__name__})")
        assert wanted in str(error), (cls, str(error))
        assert isinstance(error, DeadlineExceeded) == issubclass(cls, httpx.TimeoutException)


async def test_redirects_are_not_followed(facade: Facade, mock: respx.MockRouter) -> None:
    mock.get("/items/SKU-1").respond(302, headers={"Location": "http://evil.test/"})
    with pytest.raises(ToolError, match="302 redirect, which facade does not follow"):
        await _tool(facade, "get_item").run({"sku": "SKU-1"})


async def test_oversized_and_compressed_bodies_are_capped(facade: Facade,
                                                          mock: respx.MockRouter) -> None:
    bomb = gzip.compress(b"[" + b"0," * 2_000_000 + b"0]")
    assert len(bomb) < facade.backend.max_response_bytes  # small on the wire
    mock.get("/items/SKU-1").respond(200, content=bomb, headers={
        "Content-Encoding": "gzip", "Content-Type": "application/json"})
    with pytest.raises(ToolError, match="larger than 1,048,576 bytes"):
        await _tool(facade, "get_item").run({"sku": "SKU-1"})


async def test_unexpected_content_type_is_an_error(facade: Facade,
                                                   mock: respx.MockRouter) -> None:
    mock.get("/items/SKU-1").respond(200, content=b"<html>", headers={
        "Content-Type": "text/html"})
    with pytest.raises(ToolError, match="with text/html, which facade does not pass on"):
        await _tool(facade, "get_item").run({"sku": "SKU-1"})


async def test_response_off_schema_passes_on_unless_strict(facade: Facade,
                                                           mock: respx.MockRouter) -> None:
    mock.get("/items/SKU-1").respond(json={**ITEM, "name": 7})
    result = await _tool(facade, "get_item").run({"sku": "SKU-1"})
    assert result.structured_content is not None and result.structured_content["name"] == 7
    definition = next(t for t in facade.tools if t.name == "get_item")
    upstream = Upstream(facade.backend, environ={"INVENTORY_TOKEN": "s3cret"})
    strict = CuratedTool.from_definition(dataclasses.replace(definition, validate="strict"),
                                         upstream)
    with pytest.raises(ToolError, match=r"does not match its documented schema at name: "
                       r"integer where string is documented \(type\)$"):
        await strict.run({"sku": "SKU-1"})


async def test_max_items_cuts_with_a_note(facade: Facade, mock: respx.MockRouter) -> None:
    items = [{"sku": f"SKU-{i}", "name": "n", "stock": i} for i in range(60)]
    mock.get("/items").respond(json={"items": items, "next_cursor": "c"})
    result = await _tool(facade, "list_items").run({})
    assert result.structured_content is not None
    assert len(result.structured_content["items"]) == 50
    assert result.content[-1].text == "Note: items: 60 items, showing the first 50."  # type: ignore[union-attr]


def test_missing_credential_env_fails_at_start(facade: Facade) -> None:
    with pytest.raises(MissingCredentialError,
                       match="backend.auth.bearer_env: environment variable 'INVENTORY_TOKEN' "
                       "is not set"):
        build_server(facade, environ={})


def _ssl_context(upstream: Upstream) -> ssl.SSLContext:
    pool = upstream.transport._pool  # type: ignore[attr-defined]
    context: ssl.SSLContext = pool._ssl_context
    return context


def test_a_plain_http_backend_skips_the_ca_bundle_and_trusts_no_certificate(
        facade: Facade) -> None:
    """No TLS is ever spoken to an http:// backend; should it be, nothing verifies."""
    context = _ssl_context(Upstream(dataclasses.replace(facade.backend,
                                                          base_url="http://backend.test/v1"),
                                     environ={"INVENTORY_TOKEN": "s3cret"}))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0


def test_an_https_backend_verifies_against_the_ca_bundle(facade: Facade) -> None:
    context = _ssl_context(Upstream(dataclasses.replace(facade.backend,
                                                          base_url="https://backend.test/v1"),
                                    environ={"INVENTORY_TOKEN": "s3cret"}))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 50


async def test_the_backend_pool_opens_on_the_first_call_and_reopens_after_a_lifespan(
        facade: Facade, mock: respx.MockRouter) -> None:
    """Starting (and answering tools/list) opens no pool; the lifespan's close is seen by
    readiness, and a call in a new lifespan opens a fresh one."""
    route = mock.get("/items/SKU-1").respond(json=ITEM, headers={"Set-Cookie": "s=1"})
    tool = _tool(facade, "get_item")
    upstream = tool.upstream
    assert upstream is not None
    assert upstream._pool is None and upstream.is_open_client

    await tool.run({"sku": "SKU-1"})
    first = upstream._pool
    assert first is not None

    await upstream.aclose()
    assert upstream._pool is None and not upstream.is_open_client

    await tool.run({"sku": "SKU-1"})
    assert upstream._pool is not None and upstream._pool is not first
    assert upstream.is_open_client
    assert route.call_count == 2
    # No cookie jar: what one answer set is not sent with the next call.
    assert "cookie" not in route.calls.last.request.headers


async def test_closing_a_backend_that_was_never_called(facade: Facade) -> None:
    upstream = Upstream(facade.backend, environ={"INVENTORY_TOKEN": "s3cret"})
    await upstream.aclose()
    assert upstream._pool is None and not upstream.is_open_client
