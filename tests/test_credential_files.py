"""Backend credentials from files (`bearer_file`, `api_key_file`, `basic_password_file`,
`client_secret_file`): read at start, re-read when the file changes, last good value kept
when a rotation leaves the file unreadable or empty; and the caller's claims as checked
identity headers."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest
from mcp.server.auth.provider import AccessToken

from facade.call.credentials import Secret, ServiceCredentials
from facade.call.failures import MissingCredentialError
from facade.call.identity import MAX_HEADER_VALUE, claim_text, meets_claims
from facade.call.scrub import scrub
from fastmcp.exceptions import ToolError


def rotate(path: Path, text: str) -> None:
    """Replace the file as Kubernetes does: write beside it, then rename over it."""
    staged = path.with_suffix(".new")
    staged.write_text(text)
    os.replace(staged, path)


def test_a_rotated_file_takes_effect_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token-value\n")
    credentials = ServiceCredentials({"bearer_file": str(path)}, {})
    assert credentials.headers() == {"Authorization": "Bearer first-token-value"}
    rotate(path, "second-token-value")
    assert credentials.headers() == {"Authorization": "Bearer second-token-value"}
    assert scrub("first-token-value second-token-value") == "*** ***"


@pytest.mark.parametrize("broken", ["", "  \n", None], ids=["empty", "blank", "removed"])
def test_a_broken_rotation_keeps_the_last_good_value_with_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, broken: str | None) -> None:
    path = tmp_path / "key"
    path.write_text("good-api-key-value")
    credentials = ServiceCredentials({"api_key_file": str(path), "header": "X-Key"}, {})
    if broken is None:
        path.unlink()
    else:
        rotate(path, broken)
    with caplog.at_level(logging.WARNING, logger="facade.credentials"):
        assert credentials.headers() == {"X-Key": "good-api-key-value"}
        assert credentials.headers() == {"X-Key": "good-api-key-value"}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "keeping the last good value" in warnings[0]
    assert "good-api-key-value" not in warnings[0]
    rotate(path, "next-api-key-value")
    assert credentials.headers() == {"X-Key": "next-api-key-value"}


@pytest.mark.parametrize(("content", "message"), [
    (None, "the file {path} cannot be read"), ("\n", "the file {path} is empty"),
    (b"\xff\xfe", "the file {path} is not UTF-8 text"),
], ids=["missing", "empty", "binary"])
def test_an_unusable_file_is_a_clear_error_at_start(tmp_path: Path, content: str | bytes | None,
                                                    message: str) -> None:
    path = tmp_path / "password"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(MissingCredentialError) as info:
        ServiceCredentials({"basic_user_env": "U", "basic_password_file": str(path)},
                           {"U": "user"})
    assert str(info.value).startswith("backend.auth.basic_password_file: " +
                                      message.format(path=path))


def test_basic_auth_mixes_an_env_user_and_a_file_password(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text("pass-word-1")
    credentials = ServiceCredentials({"basic_user_env": "U", "basic_password_file": str(path)},
                                     {"U": "svc"})
    encoded = base64.b64encode(b"svc:pass-word-1").decode()
    assert credentials.headers() == {"Authorization": f"Basic {encoded}"}
    assert scrub(encoded) == "***"


def test_an_env_secret_is_read_once(tmp_path: Path) -> None:
    environ = {"T": "env-token-value"}
    secret = Secret("backend.auth.bearer_env", env="T", environ=environ)
    environ["T"] = "changed"
    assert secret.value() == "env-token-value"
    with pytest.raises(MissingCredentialError, match="environment variable 'X' is not set"):
        Secret("backend.auth.bearer_env", env="X", environ={})


def caller(**claims: object) -> AccessToken:
    return AccessToken(token="t" * 20, client_id="c", scopes=[], subject="alice",
                       claims={"sub": "alice", **claims})


@pytest.mark.parametrize(("claim", "value", "expected"), [
    ("sub", None, "alice"),
    ("groups", ["staff", "support"], "staff,support"),
    ("groups", [], ""),
    ("missing", None, ""),
    ("name", "José 100%", "Jos%C3%A9 100%25"),
    ("admin", True, "true"),
    ("tenant", 42, "42"),
    ("profile", {"a": 1}, ""),
], ids=["sub", "list", "empty-list", "absent", "non-ascii", "bool", "number", "object"])
def test_claims_become_header_values(claim: str, value: object, expected: str) -> None:
    token = caller(**({claim: value} if value is not None else {}))
    assert claim_text(token, "X-H", claim) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("alice\r\nX-Admin: true", "claim holds control characters"),
    ("x" * (MAX_HEADER_VALUE + 1), f"longer than {MAX_HEADER_VALUE} characters"),
], ids=["crlf", "too-long"])
def test_unsafe_claim_values_refuse_the_call(value: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        claim_text(caller(name=value), "X-User-Name", "name")


def test_claim_conditions_need_every_claim_to_hold_an_accepted_value() -> None:
    conditions = (("groups", ("support", "admins")), ("tenant", ("acme",)))
    assert meets_claims(conditions, caller(groups=["staff", "support"], tenant="acme"))
    assert not meets_claims(conditions, caller(groups=["staff"], tenant="acme"))
    assert not meets_claims(conditions, caller(groups=["support"]))
    assert not meets_claims(conditions, None)
    assert meets_claims((), None)
