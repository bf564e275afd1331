"""The token exchanger (RFC 8693) against `httpx.MockTransport`: what it sends, what it
caches and for how long, how it fails, and that its tokens are scrubbed."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fastmcp.server.auth.providers.jwt import RSAKeyPair
from joserfc import jwt
from joserfc.jwk import RSAKey

from facade.call.events import Observer
from facade.call.failures import MissingCredentialError
from facade.call.exchange import (
    GRANT_TYPE,
    ExchangeFailed,
    ExchangeRefused,
    ExchangeUnavailable,
    TokenExchanger,
)
from facade.call.scrub import scrub
from facade.tools import BackendSettings, TokenExchangeSettings

SECRET = "client-secret-value-0123"
ENDPOINT = "https://idp.test/token"
BACKEND = BackendSettings("https://api.test", 5.0, {}, None, 1024, retry_attempts=1,
                          retry_backoff=0.0, breaker_failures=2, breaker_reset_after=30.0)
SETTINGS = TokenExchangeSettings(ENDPOINT, "facade", client_secret_env="IDP_SECRET",
                                 audience="orders", resource="https://orders.test",
                                 scopes=("orders.read", "orders.list"), refresh_before=30.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Events(Observer):
    def __init__(self) -> None:
        self.exchanges: list[str] = []

    def token_exchange(self, backend: str, outcome: str) -> None:
        self.exchanges.append(outcome)


class IdP:
    """A token endpoint: each answer is `answer(request)`; requests are recorded."""

    def __init__(self, expires_in: object = 100) -> None:
        self.requests: list[httpx.Request] = []
        self.expires_in = expires_in
        self.status, self.body = 200, b""
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if self.status != 200:
            return httpx.Response(self.status, content=self.body)
        form = parse_qs(request.content.decode())
        data: dict[str, Any] = {"access_token": f"exchanged-{form['subject_token'][0]}-"
                                f"{len(self.requests)}", "token_type": "Bearer",
                                "issued_token_type": "urn:ietf:params:oauth:token-type:"
                                "access_token"}
        if self.expires_in is not None:
            data["expires_in"] = self.expires_in
        return httpx.Response(200, json=data)


def exchanger(idp: IdP, clock: Clock | None = None, settings: TokenExchangeSettings = SETTINGS,
              events: Observer | None = None) -> TokenExchanger:
    async def no_sleep(seconds: float) -> None:
        pass

    return TokenExchanger(settings, BACKEND, environ={"IDP_SECRET": SECRET},
                          transport=httpx.MockTransport(idp), clock=clock or Clock(),
                          sleep=no_sleep, observer=events)


async def test_the_request_is_an_rfc8693_exchange_with_basic_client_auth() -> None:
    idp = IdP()
    token = await exchanger(idp).token_for("alice", "subject-token-alice")
    assert token == "exchanged-subject-token-alice-1"
    request = idp.requests[0]
    assert (request.method, str(request.url)) == ("POST", ENDPOINT)
    assert parse_qs(request.content.decode()) == {
        "grant_type": [GRANT_TYPE], "subject_token": ["subject-token-alice"],
        "subject_token_type": ["urn:ietf:params:oauth:token-type:access_token"],
        "requested_token_type": ["urn:ietf:params:oauth:token-type:access_token"],
        "audience": ["orders"], "resource": ["https://orders.test"],
        "scope": ["orders.read orders.list"]}
    assert request.headers["authorization"] == "Basic " + base64.b64encode(
        f"facade:{SECRET}".encode()).decode()


async def test_client_secret_post_sends_the_client_in_the_form() -> None:
    idp = IdP()
    settings = TokenExchangeSettings(ENDPOINT, "facade", client_auth="client_secret_post",
                                     client_secret_env="IDP_SECRET", audience="orders")
    await exchanger(idp, settings=settings).token_for("alice", "subject-token-alice")
    form = parse_qs(idp.requests[0].content.decode())
    assert (form["client_id"], form["client_secret"]) == (["facade"], [SECRET])
    assert "authorization" not in idp.requests[0].headers


async def test_a_token_is_cached_until_shortly_before_it_expires() -> None:
    idp, clock = IdP(expires_in=100), Clock()
    te = exchanger(idp, clock)
    first = await te.token_for("alice", "subject-a")
    clock.now += 69  # 100 s lifetime, renewed 30 s early
    assert await te.token_for("alice", "subject-a2") == first
    assert len(idp.requests) == 1
    clock.now += 2
    assert await te.token_for("alice", "subject-a3") != first
    assert len(idp.requests) == 2


async def test_principals_audiences_and_scopes_each_get_their_own_token() -> None:
    idp = IdP()
    te = exchanger(idp)
    tokens = {await te.token_for(p, f"subject-{p}") for p in ("alice", "bob", "alice")}
    assert len(tokens) == 2 and len(idp.requests) == 2


async def test_concurrent_calls_of_one_principal_share_one_exchange() -> None:
    idp = IdP()
    idp.gate = asyncio.Event()
    te = exchanger(idp)
    calls = [asyncio.ensure_future(te.token_for("alice", "subject-a")) for _ in range(5)]
    other = asyncio.ensure_future(te.token_for("bob", "subject-b"))
    while len(idp.requests) < 2:  # both exchanges have reached the token endpoint
        await asyncio.sleep(0)
    idp.gate.set()
    tokens = await asyncio.gather(*calls)
    assert len(set(tokens)) == 1 and await other != tokens[0]
    assert len(idp.requests) == 2


async def test_one_caller_giving_up_does_not_cancel_the_shared_exchange() -> None:
    idp = IdP()
    idp.gate = asyncio.Event()
    te = exchanger(idp)
    quitter = asyncio.ensure_future(te.token_for("alice", "subject-a"))
    stayer = asyncio.ensure_future(te.token_for("alice", "subject-a"))
    while not idp.requests:
        await asyncio.sleep(0)
    quitter.cancel()
    idp.gate.set()
    assert await stayer == "exchanged-subject-a-1"
    assert quitter.cancelled()


async def test_the_cache_is_bounded_least_recently_used_first_out() -> None:
    idp = IdP()
    settings = TokenExchangeSettings(ENDPOINT, "facade", client_secret_env="IDP_SECRET",
                                     audience="orders", cache_size=2)
    te = exchanger(idp, settings=settings)
    for principal in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        await te.token_for(principal, f"subject-{principal}")
    assert len(idp.requests) == 3
    await te.token_for("a", "subject-a")
    assert len(idp.requests) == 3
    await te.token_for("b", "subject-b")
    assert len(idp.requests) == 4


@pytest.mark.parametrize("expires_in", [None, "soon", 10], ids=["absent", "not-a-number",
                                                                 "within-refresh-window"])
async def test_a_token_without_a_usable_lifetime_serves_one_call_only(expires_in: object
                                                                      ) -> None:
    idp = IdP(expires_in=expires_in)
    te = exchanger(idp)
    assert await te.token_for("alice", "s-1") != await te.token_for("alice", "s-1")
    assert len(idp.requests) == 2


@pytest.mark.parametrize(("status", "body", "error", "message"), [
    (400, {"error": "invalid_grant"}, ExchangeRefused, "not allowed to use this backend"),
    (400, {"error": "invalid_target"}, ExchangeRefused, "not allowed to use this backend"),
    (403, {"error": "whatever"}, ExchangeRefused, "not allowed to use this backend"),
    (401, {}, ExchangeRefused, "not allowed to use this backend"),
    (401, {"error": "invalid_client"}, ExchangeFailed, "refused the façade's own client"),
    (400, {"error": "invalid_request"}, ExchangeFailed, "did not accept the exchange "
     "(status 400)"),
    (500, {}, ExchangeFailed, "failed (status 500)"),
    (200, {"token_type": "Bearer"}, ExchangeFailed, "without a usable access token"),
    (200, {"access_token": "a b", "token_type": "Bearer"}, ExchangeFailed, "without a usable"),
    (200, {"access_token": "abcdef", "token_type": "DPoP"}, ExchangeFailed, "'DPoP' token"),
], ids=["invalid_grant", "invalid_target", "403", "401", "invalid_client", "invalid_request",
        "500", "no-token", "token-with-space", "dpop"])
async def test_failures_are_clear_and_never_show_the_services_body(
        status: int, body: dict[str, Any], error: type[Exception], message: str) -> None:
    idp, events = IdP(), Events()
    idp.status = status if status != 200 else 299  # 299: answer the body below as is
    idp.body = json.dumps({**body, "error_description": "SECRET-DETAIL"}).encode()

    async def handler(request: httpx.Request) -> httpx.Response:
        idp.requests.append(request)
        return httpx.Response(status, content=idp.body)

    te = TokenExchanger(SETTINGS, BACKEND, environ={"IDP_SECRET": SECRET},
                        transport=httpx.MockTransport(handler), observer=events)
    with pytest.raises(error, match=re.escape(message)) as info:
        await te.token_for("alice", "subject-a")
    assert type(info.value) is error
    assert "SECRET-DETAIL" not in str(info.value) and "subject-a" not in str(info.value)
    assert events.exchanges == ["refused" if error is ExchangeRefused else "failed"]


async def test_an_outage_opens_the_breaker_and_then_fails_fast() -> None:
    idp, events = IdP(), Events()
    idp.status = 503
    te = exchanger(idp, events=events)
    for subject in ("s-1", "s-2"):
        with pytest.raises(ExchangeFailed, match="failed \\(status 503\\)"):
            await te.token_for(subject, subject)
    assert len(idp.requests) == 4  # each exchange retried once (retries.attempts: 1)
    with pytest.raises(ExchangeUnavailable, match="circuit breaker open"):
        await te.token_for("s-3", "s-3")
    assert len(idp.requests) == 4
    assert events.exchanges == ["failed", "failed", "unavailable"]


async def test_refusals_do_not_open_the_breaker() -> None:
    idp = IdP()
    idp.status, idp.body = 400, b'{"error": "invalid_grant"}'
    te = exchanger(idp)
    for subject in ("s-1", "s-2", "s-3"):
        with pytest.raises(ExchangeRefused):
            await te.token_for(subject, subject)
    assert te.breaker.state == "closed"


async def test_a_connection_failure_is_retried_then_reported() -> None:
    attempts: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("refused", request=request)

    te = TokenExchanger(SETTINGS, BACKEND, environ={"IDP_SECRET": SECRET},
                        transport=httpx.MockTransport(refuse))
    with pytest.raises(ExchangeFailed, match="token service is unreachable"):
        await te.token_for("alice", "subject-a")
    assert len(attempts) == 2


async def test_subject_and_exchanged_tokens_are_scrubbed() -> None:
    token = await exchanger(IdP()).token_for("alice", "subject-scrub-me")
    assert scrub(f"log {token} and subject-scrub-me") == "log *** and ***"


async def test_private_key_jwt_signs_a_fresh_assertion_for_each_exchange(tmp_path: Path
                                                                         ) -> None:
    pair = RSAKeyPair.generate()
    pem = tmp_path / "facade-key.pem"
    pem.write_text(pair.private_key.get_secret_value())
    settings = TokenExchangeSettings(ENDPOINT, "facade", client_auth="private_key_jwt",
                                     private_key_file=str(pem), private_key_id="key-1",
                                     audience="orders")
    idp = IdP(expires_in=None)
    te = TokenExchanger(settings, BACKEND, environ={}, transport=httpx.MockTransport(idp))
    for subject in ("s-1", "s-2"):
        await te.token_for("alice", subject)
    forms = [parse_qs(r.content.decode()) for r in idp.requests]
    public = RSAKey.import_key(pair.public_key)
    assertions = [jwt.decode(f["client_assertion"][0], public) for f in forms]
    for form, assertion in zip(forms, assertions, strict=True):
        assert form["client_id"] == ["facade"] and "authorization" not in idp.requests[0].headers
        assert form["client_assertion_type"] == [
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
        assert assertion.header == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
        claims = assertion.claims
        assert (claims["iss"], claims["sub"], claims["aud"]) == ("facade", "facade", ENDPOINT)
        assert claims["exp"] - claims["iat"] == 60
    assert assertions[0].claims["jti"] != assertions[1].claims["jti"]


def test_private_key_jwt_without_a_usable_key_does_not_start(tmp_path: Path) -> None:
    pem = tmp_path / "facade-key.pem"
    pem.write_text(RSAKeyPair.generate().public_key)  # a public key is not enough
    settings = TokenExchangeSettings(ENDPOINT, "facade", client_auth="private_key_jwt",
                                     private_key_file=str(pem), audience="orders")
    with pytest.raises(MissingCredentialError, match="does not hold a private key for RS256"):
        TokenExchanger(settings, BACKEND, environ={})
