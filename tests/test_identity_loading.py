"""Load time of per-user identity: `backend.auth.token_exchange`, `*_file` credentials,
`backend.identity_headers` and tools' `claims`, in single- and multi-API curations."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from log_support import messages

from facade import LoadError, load
from facade.cli import main
from facade.serve.server import callerless_problems
from facade.tools import TokenExchangeSettings

Write = Callable[..., Path]

AUTH = """\
server:
  auth:
    jwt: {jwks_uri: "http://127.0.0.1:9/jwks.json", issuer: "https://idp.test/",
          audience: "https://mcp.test/mcp"}
"""
EXCHANGE = """\
backend:
  base_url: "http://127.0.0.1:9/v1"
  identity_headers: {X-User-Id: sub, X-User-Groups: groups}
  auth:
    token_exchange:
      token_endpoint: "${IDP:-https://idp.test}/token"
      client_id: facade
      client_secret_file: secrets/client
      audience: inventory
      scope: [inventory.read]
"""
TOOLS = """\
tools:
  get_item:
    operation: getItem
    claims: {groups: [support, admins]}
"""


def _load(path: Path) -> object:
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        return load(path.name)
    finally:
        os.chdir(here)


def _problems(path: Path) -> list[str]:
    with pytest.raises(LoadError) as info:
        _load(path)
    return str(info.value).splitlines()


def test_token_exchange_identity_headers_and_claims_load_into_frozen_settings(
        write_curation: Write) -> None:
    path = write_curation("version: 1\nspec: specs/inventory.yaml\n" + AUTH + EXCHANGE + TOOLS)
    facade = _load(path)
    backend = facade.backend  # type: ignore[attr-defined]
    assert backend.auth is None  # no service credential: a token per caller instead
    assert backend.token_exchange == TokenExchangeSettings(
        token_endpoint="https://idp.test/token", client_id="facade",
        client_secret_file=str(path.parent / "secrets" / "client"), audience="inventory",
        scopes=("inventory.read",))
    assert backend.identity_headers == (("X-User-Id", "sub"), ("X-User-Groups", "groups"))
    assert facade.tools[0].claims == (("groups", ("support", "admins")),)  # type: ignore[attr-defined]
    assert facade.needs_caller  # type: ignore[attr-defined]


def test_per_user_identity_without_server_auth_is_refused_at_load(write_curation: Write
                                                                   ) -> None:
    path = write_curation("version: 1\nspec: specs/inventory.yaml\n" + EXCHANGE + TOOLS)
    assert _problems(path) == [
        "curation.yaml:5:21: backend.identity_headers: identity headers need a verified "
        "caller, but server.auth is not configured (configure server.auth (JWTs from your "
        "identity provider) and serve over HTTP)",
        "curation.yaml:8:7: backend.auth.token_exchange: token exchange needs a verified "
        "caller's token, but server.auth is not configured (configure server.auth (JWTs from "
        "your identity provider) and serve over HTTP; for local use over stdio, name the "
        "subject token with `subject_token_env`)",
        "curation.yaml:16:13: tools.get_item.claims: claim conditions need server.auth, which "
        "is not configured (configure server.auth (JWTs from your identity provider) and "
        "serve over HTTP)",
    ]


def test_a_subject_token_env_allows_token_exchange_for_local_use(write_curation: Write
                                                                 ) -> None:
    path = write_curation("""\
        version: 1
        spec: specs/inventory.yaml
        backend:
          base_url: "http://127.0.0.1:9/v1"
          auth:
            token_exchange:
              token_endpoint: https://idp.test/token
              client_id: facade
              client_secret_env: IDP_CLIENT_SECRET
              resource: https://inventory.test
              subject_token_env: MY_TOKEN
        tools: {get_item: {operation: getItem}}
        """)
    facade = _load(path)
    assert not facade.needs_caller  # type: ignore[attr-defined]
    assert callerless_problems(facade, {}) == [  # type: ignore[arg-type]
        "backend.auth.token_exchange.subject_token_env: environment variable 'MY_TOKEN' "
        "is not set"]
    assert callerless_problems(facade, {"MY_TOKEN": "x" * 20}) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(("auth", "message"), [
    ("{bearer_env: T, bearer_file: t.txt}", "give a secret by env var or by file, not both"),
    ("{bearer_file: t.txt, api_key_file: k.txt}", "give exactly one of bearer_env/bearer_file,"
     " api_key_env/api_key_file, basic_user_env + basic_password_env/basic_password_file, or "
     "token_exchange"),
    ("{basic_password_file: p.txt}", "basic auth needs basic_user_env and basic_password_env "
     "or basic_password_file"),
    ("{token_exchange: {token_endpoint: 'https://i.test/t', client_id: c, audience: a}}",
     "give exactly one of client_secret_env or client_secret_file"),
], ids=["env-and-file", "two-schemes", "basic-without-user", "exchange-without-secret"])
def test_auth_shapes_are_checked(write_curation: Write, auth: str, message: str) -> None:
    path = write_curation("version: 1\nspec: specs/inventory.yaml\nbackend:\n"
                          f"  base_url: 'http://127.0.0.1:9/v1'\n  auth: {auth}\n"
                          "tools: {get_item: {operation: getItem}}\n")
    assert any(message in line for line in _problems(path)), _problems(path)


def test_credential_files_are_made_absolute_beside_the_curation(write_curation: Write
                                                                ) -> None:
    path = write_curation("""\
        version: 1
        spec: specs/inventory.yaml
        backend:
          base_url: "http://127.0.0.1:9/v1"
          auth: {api_key_file: secrets/key, header: X-Key}
        tools: {get_item: {operation: getItem}}
        """)
    backend = _load(path).backend  # type: ignore[attr-defined]
    assert backend.auth == {"api_key_file": str(path.parent / "secrets" / "key"),
                            "header": "X-Key"}


def test_identity_headers_that_carry_credentials_or_routing_are_refused(
        write_curation: Write) -> None:
    path = write_curation("version: 1\nspec: specs/inventory.yaml\n" + AUTH + """\
backend:
  base_url: "http://127.0.0.1:9/v1"
  identity_headers: {Authorization: sub, Host: sub, "Bad Name": sub, X-Ok: " "}
tools: {get_item: {operation: getItem}}
""")
    assert _problems(path) == [
        "curation.yaml:9:22: backend.identity_headers.Authorization: header 'Authorization' "
        "cannot carry a claim: it carries credentials or routing, or facade sets it (use a "
        "header of your own, e.g. X-User-Id)",
        "curation.yaml:9:42: backend.identity_headers.Host: header 'Host' cannot carry a "
        "claim: it carries credentials or routing, or facade sets it (use a header of your "
        "own, e.g. X-User-Id)",
        "curation.yaml:9:53: backend.identity_headers.Bad Name: 'Bad Name' is not a header "
        "name",
        "curation.yaml:9:76: backend.identity_headers.X-Ok: name a claim, e.g. `sub`",
    ]


def test_a_multi_api_curation_checks_each_api_against_the_top_level_server_auth(
        write_curation: Write) -> None:
    api = """\
apis:
  inv:
    spec: specs/inventory.yaml
    backend:
      base_url: "http://127.0.0.1:9/v1"
      identity_headers: {X-User-Id: sub}
    tools: {get_item: {operation: getItem}}
"""
    refused = write_curation("version: 1\n" + api, name="refused.yaml")
    assert _problems(refused) == [
        "refused.yaml:7:25: apis.inv.backend.identity_headers: identity headers need a "
        "verified caller, but server.auth is not configured (configure server.auth (JWTs "
        "from your identity provider) and serve over HTTP)"]
    facade = _load(write_curation("version: 1\n" + AUTH + api, name="ok.yaml"))
    assert facade.backends["inv"].identity_headers == (("X-User-Id", "sub"),)  # type: ignore[attr-defined]
    assert callerless_problems(facade, {}) == [  # type: ignore[arg-type]
        "apis.inv.backend.identity_headers: sends the caller's claims to the backend, and "
        "without HTTP there is no verified caller; serve it over HTTP with server.auth "
        "(`facade serve --transport http`)"]


def test_serve_over_stdio_refuses_a_curation_that_needs_a_verified_caller(
        write_curation: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_curation("version: 1\nspec: specs/inventory.yaml\n" + AUTH + EXCHANGE + TOOLS)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "client").write_text("client-secret-value\n")
    monkeypatch.setenv("FACADE_ARTIFACT", "off")
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 1
    assert messages(result.stderr) == [  # serve's log stream: json when not on a terminal
        f"{path}: backend.identity_headers: sends the caller's claims to the backend, and "
        "without HTTP there is no verified caller; serve it over HTTP with server.auth "
        "(`facade serve --transport http`)",
        f"{path}: backend.auth.token_exchange: exchanges the caller's token, and without HTTP "
        "there is no verified caller; serve it over HTTP with server.auth (`facade serve "
        "--transport http`), or for local use name a token with `subject_token_env`",
        f"{path}: tool get_item: its `claims` conditions need a verified caller; serve it "
        "over HTTP with server.auth (`facade serve --transport http`)",
    ]
    assert "client-secret-value" not in result.output


def test_install_lists_the_token_exchange_secrets_by_name(write_curation: Write) -> None:
    from facade.curate.install import EnvVar, requirements

    path = write_curation("""\
        version: 1
        spec: specs/inventory.yaml
        backend:
          base_url: "http://127.0.0.1:9/v1"
          auth:
            token_exchange:
              token_endpoint: https://idp.test/token
              client_id: facade
              client_secret_env: IDP_CLIENT_SECRET
              audience: inventory
              subject_token_env: MY_TOKEN
        tools: {get_item: {operation: getItem}}
        """)
    env = {e.name: e for e in requirements(path).env}
    assert env["IDP_CLIENT_SECRET"] == EnvVar(
        "IDP_CLIENT_SECRET", "Client secret of the façade at the token service (token "
        "exchange).", secret=True, required=True)
    assert env["MY_TOKEN"] == EnvVar(
        "MY_TOKEN", "Your access token, exchanged for a backend token (local use).",
        secret=True, required=True)
