"""End to end: the time claims of a JWT, on the real server of `test_auth_http`.

A token must carry `exp`; `nbf` and `iat` in the future (beyond the documented leeway for
clock skew) are refused. Tokens are signed here, by the key whose JWKS the server uses."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwk, jwt

from facade.serve.inbound import JWT_LEEWAY

from .test_auth_http import AUDIENCE, ISSUER, AuthServer, auth_server, initialize

pytestmark = pytest.mark.integration
__all__ = ["auth_server"]  # the module-scoped fixture, used here too


def signed(server: AuthServer, **times: Any) -> str:
    """A token like `AuthServer.jwt()`'s, with exactly the time claims given (None: left
    out)."""
    claims: dict[str, Any] = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE,
                              "scope": "inventory.read"}
    claims.update({k: v for k, v in times.items() if v is not None})
    key = jwk.import_key(server.key.private_key.get_secret_value(), "RSA")
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def now() -> int:
    return int(time.time())


@pytest.mark.parametrize(("case", "times", "status"), [
    ("valid", {"exp": "+300", "iat": "+0"}, 200),
    ("no exp", {"iat": "+0"}, 401),
    ("exp not a number", {"exp": "soon"}, 401),
    ("expired", {"exp": "-5"}, 401),
    ("nbf in the future", {"exp": "+300", "nbf": "+600"}, 401),
    ("nbf within the leeway", {"exp": "+300", "nbf": f"+{JWT_LEEWAY // 2}"}, 200),
    ("nbf in the past", {"exp": "+300", "nbf": "-60"}, 200),
    ("iat in the future", {"exp": "+900", "iat": "+600"}, 401),
    ("iat within the leeway", {"exp": "+300", "iat": f"+{JWT_LEEWAY // 2}"}, 200),
    ("iat not a number", {"exp": "+300", "iat": "yesterday"}, 401),
])
def test_jwt_time_claims(auth_server: AuthServer, case: str, times: dict[str, str],
                         status: int) -> None:
    claims = {name: now() + int(value) if value[0] in "+-" else value
              for name, value in times.items()}
    response = initialize(auth_server, signed(auth_server, **claims))
    assert response.status_code == status, case
