"""Call time: `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core
§9) for the token exchange.

Each exchange sends a fresh client assertion: a JWT signed with the façade's private key,
`iss` and `sub` its client id, `aud` the token endpoint, a unique `jti` and a one-minute
lifetime. The key is a PEM file, re-read when it changes (`facade.call.credentials.Secret`)
and parsed again only then; an unusable key is a `MissingCredentialError` at start.
"""

from __future__ import annotations

import logging
import time
import uuid

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from facade.call.credentials import Secret
from facade.call.failures import MissingCredentialError
from facade.tools import TokenExchangeSettings

__all__ = ["ASSERTION_TYPE", "ClientAssertions"]

logger = logging.getLogger("facade.credentials")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFETIME = 60  # seconds


class ClientAssertions:
    """Signs client assertions with the key in `secret` (a PEM private key)."""

    def __init__(self, settings: TokenExchangeSettings, secret: Secret, what: str) -> None:
        self.settings, self._secret, self.what = settings, secret, what
        self._pem = ""
        self._key: RSAKey | ECKey | None = None
        self._load(secret.value())
        if self._key is None:
            raise MissingCredentialError(f"{what}: the file {secret.file} does not hold a "
                                         f"private key for {settings.assertion_algorithm}")

    def _load(self, pem: str) -> None:
        """Parse `pem` when it changed; a broken rotation keeps the key parsed before."""
        if pem == self._pem:
            return
        self._pem = pem
        kind = ECKey if self.settings.assertion_algorithm.startswith("ES") else RSAKey
        try:
            key = kind.import_key(pem)
        except (JoseError, ValueError, TypeError):
            key = None
        if key is not None and key.is_private:
            self._key = key
        elif self._key is not None:  # at start, __init__ reports it
            logger.warning("%s: the file %s no longer holds a usable private key; keeping "
                           "the last good one", self.what, self._secret.file)

    def sign(self) -> str:
        self._load(self._secret.value())
        assert self._key is not None  # __init__ refuses to start without one
        s, now = self.settings, int(time.time())
        header = {"alg": s.assertion_algorithm, "typ": "JWT"}
        if s.private_key_id:
            header["kid"] = s.private_key_id
        claims = {"iss": s.client_id, "sub": s.client_id, "aud": s.token_endpoint,
                  "iat": now, "exp": now + LIFETIME, "jti": uuid.uuid4().hex}
        return jwt.encode(header, claims, self._key, algorithms=[s.assertion_algorithm])
