"""Call time: the caller's identity, as the backend sees it.

For a backend with `token_exchange`, each call carries `Authorization: Bearer <token
exchanged for this caller>` (`facade.call.exchange`) instead of a service credential; with
`identity_headers`, chosen claims of the caller's verified token travel as headers. Both
need a verified caller, which fastmcp hands over as an `AccessToken`; over stdio there is
none, and only an explicit `subject_token_env` stands in for one. Only tokens from an
identity provider (JWTs, with an `iss`) are exchanged: a static token never leaves the
façade.

Claim values are checked before they become headers: control characters (CR, LF…) and
values over `MAX_HEADER_VALUE` characters refuse the call; non-ASCII characters and `%`
are percent-encoded as UTF-8 (`José` → `Jos%C3%A9`). A claim the token lacks is sent as an
empty header, so no inbound or static value of that header can stand in for it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from urllib.parse import quote

import httpx
from fastmcp.exceptions import ToolError
from mcp.server.auth.provider import AccessToken, principal_components

from facade.call.credentials import Secret
from facade.call.events import Observer
from facade.call.exchange import TokenExchanger
from facade.call.scrub import register_ephemeral
from facade.tools import BackendSettings

__all__ = ["MAX_HEADER_VALUE", "CallerIdentity", "claim_text", "meets_claims"]

Conditions = tuple[tuple[str, tuple[str, ...]], ...]

MAX_HEADER_VALUE = 1024
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN = "".join(c for c in string.printable if c not in "%\t\n\r\x0b\x0c")


class CallerIdentity:
    """The per-call headers of one backend: an exchanged token, identity headers, or both."""

    def __init__(self, backend: BackendSettings, environ: Mapping[str, str], *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 observer: Observer | None = None) -> None:
        settings = backend.token_exchange
        self.exchanger = TokenExchanger(settings, backend, environ=environ,
                                        transport=transport, observer=observer) \
            if settings is not None else None
        self._headers = backend.identity_headers
        self._subject: Secret | None = None
        if settings is not None and settings.subject_token_env is not None and \
                environ.get(settings.subject_token_env):
            self._subject = Secret("backend.auth.token_exchange.subject_token_env",
                                   env=settings.subject_token_env, environ=environ)

    async def headers_for(self, caller: AccessToken | None) -> dict[str, str]:
        """The headers that say who calls; they replace the service credential."""
        headers = {name: claim_text(caller, name, claim) for name, claim in self._headers} \
            if self._headers else {}
        if self.exchanger is not None:
            if caller is not None:
                if not (caller.claims or {}).get("iss"):
                    # A static token (server.auth.tokens) is the operator's secret, not an
                    # identity provider's token: it is never sent to the token service.
                    raise ToolError("This backend needs a token from the identity provider "
                                    "(token exchange); a static token cannot be exchanged")
                principal: object = principal_components(caller)
                subject = caller.token
            elif self._subject is not None:
                principal, subject = "subject_token_env", self._subject.value()
            else:
                raise ToolError("This backend needs a signed-in caller (token exchange), and "
                                "this call has none; connect over HTTP with a token")
            register_ephemeral([subject])
            token = await self.exchanger.token_for(principal, subject)
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def aclose(self) -> None:
        if self.exchanger is not None:
            await self.exchanger.aclose()


def claim_text(caller: AccessToken | None, header: str, claim: str) -> str:
    """A claim as a header value: lists joined with commas, absent as empty.

    Raises:
        ToolError: the value holds control characters or is too long.
    """
    if caller is None:
        raise ToolError(f"This backend needs a signed-in caller (header {header}), and this "
                        "call has none; connect over HTTP with a token")
    claims = caller.claims or {}
    value = claims.get(claim, caller.subject or caller.client_id if claim == "sub" else None)
    if isinstance(value, list):
        text = ",".join(_scalar(v) for v in value if v is not None)
    else:
        text = _scalar(value) if value is not None else ""
    if _UNSAFE.search(text):
        raise ToolError(f"The caller's {claim!r} claim holds control characters, so it "
                        f"cannot be sent as {header}; tell the operator")
    text = quote(text, safe=_PLAIN)
    if len(text) > MAX_HEADER_VALUE:
        raise ToolError(f"The caller's {claim!r} claim is longer than {MAX_HEADER_VALUE} "
                        f"characters, so it cannot be sent as {header}; tell the operator")
    return text


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return ""  # objects have no header form: treated as absent


def meets_claims(conditions: Conditions, caller: AccessToken | None) -> bool:
    """Whether the caller's verified token meets every (claim, accepted values) condition:
    its value, or one item of a list claim such as `groups`, is among the accepted ones.
    No caller meets a condition."""
    if not conditions:
        return True
    claims = (caller.claims or {}) if caller is not None else None
    if claims is None:
        return False
    for claim, accepted in conditions:
        value = claims.get(claim)
        held = value if isinstance(value, list) else [value]
        if not any(_scalar(v) in accepted for v in held if v is not None):
            return False
    return True
