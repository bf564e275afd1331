"""Call time: send an encoded request to the backend and turn the answer into a result.

This is the only module that talks to httpx. Every failure becomes a `ToolError` whose
message is written for the model that called the tool: what failed, for which operation,
and what to try. Backend bodies, URLs and credentials never appear in those messages.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastmcp.exceptions import ToolError

from facade.encoding import EncodedRequest
from facade.tools import BackendSettings, ToolDefinition

__all__ = ["BackendResponse", "MissingCredentialError", "Upstream", "map_upstream_errors"]

logger = logging.getLogger("facade.upstream")

_STATUS_HINTS = {
    400: "the backend rejected the arguments; check them against the tool's schema",
    401: "the façade's backend credentials were refused; the operator must fix them",
    403: "the façade is not allowed to do this; the operator must grant access",
    404: "nothing found; check the identifier",
    409: "conflict with the current state; read it again before retrying",
    422: "the backend rejected the arguments; check them against the tool's schema",
    429: "rate limited by the backend; retry later",
}


class MissingCredentialError(Exception):
    """An env var named by `backend.auth` is not set (raised when the server starts)."""


def _hint(status: int) -> str:
    if status in _STATUS_HINTS:
        return _STATUS_HINTS[status]
    if status >= 500:
        return "the backend failed; retry later"
    return "the request was not accepted"


@contextlib.contextmanager
def map_upstream_errors(tool: ToolDefinition, timeout: float) -> Iterator[None]:
    """Translate httpx's transport failures into `ToolError`s, most specific first."""
    label = f"{tool.binding.method} {tool.binding.path}"
    try:
        yield
    except httpx.TimeoutException as exc:
        kind = type(exc).__name__.removesuffix("Timeout").lower() or "request"
        raise ToolError(f"The backend did not answer {label} in time ({kind} timeout after "
                        f"{timeout:g}s); retry later") from exc
    except httpx.ConnectError as exc:
        raise ToolError(f"The backend for {label} is unreachable; retry later or tell the "
                        "operator") from exc
    except httpx.RemoteProtocolError as exc:
        raise ToolError(f"The backend broke the connection during {label}; retry later"
                        ) from exc
    except httpx.DecodingError as exc:
        raise ToolError(f"The backend's answer to {label} could not be decoded") from exc
    except httpx.TransportError as exc:
        raise ToolError(f"The request {label} failed in transport ({type(exc).__name__}); "
                        "retry later") from exc


@dataclass(frozen=True)
class BackendResponse:
    status: int
    media_type: str
    body: bytes


def resolve_credentials(backend: BackendSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The auth headers to send, read from the environment once, at server start."""
    auth = backend.auth
    if not auth:
        return {}

    def need(key: str) -> str:
        name = auth[key]
        value = environ.get(name)
        if not value:
            raise MissingCredentialError(
                f"backend.auth.{key}: environment variable {name!r} is not set")
        return value

    if "bearer_env" in auth:
        return {"Authorization": f"Bearer {need('bearer_env')}"}
    if "api_key_env" in auth:
        return {auth.get("header", "X-Api-Key"): need("api_key_env")}
    pair = f"{need('basic_user_env')}:{need('basic_password_env')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


class Upstream:
    """One backend: a shared `httpx.AsyncClient` plus the credentials to send."""

    def __init__(self, backend: BackendSettings, *, environ: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.backend = backend
        self._credentials = resolve_credentials(backend, os.environ if environ is None
                                                else environ)
        self._transport = transport
        self.client = self._open()

    def _open(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.backend.base_url + "/",
            timeout=httpx.Timeout(self.backend.timeout),
            headers=self.backend.headers,
            follow_redirects=False,
            transport=self._transport,
            trust_env=False,  # proxies come from the operator's config, not ambient env
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, tool: ToolDefinition, req: EncodedRequest) -> BackendResponse:
        headers = {**req.headers, **self._credentials}  # credentials are applied last
        headers.setdefault("Accept", "application/json, text/*;q=0.5")
        if self.client.is_closed:  # the server's lifespan ended and a new one began
            self.client = self._open()
        request = self.client.build_request(
            req.method, req.path.lstrip("/"), params=req.query, headers=headers,
            json=req.json_body if req.form_body is None and req.has_body else None,
            data=req.form_body,
        )
        limit = self.backend.max_response_bytes
        with map_upstream_errors(tool, self.backend.timeout):
            response = await self.client.send(request, stream=True)
            try:
                body = await _read_capped(response, limit, tool)
            finally:
                await response.aclose()
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        _raise_for_status(tool, response)
        return BackendResponse(response.status_code, media_type, body)


async def _read_capped(response: httpx.Response, limit: int, tool: ToolDefinition) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():  # decoded: a compression bomb hits the cap
        size += len(chunk)
        if size > limit:
            raise ToolError(f"The backend's answer to {tool.binding.method} "
                            f"{tool.binding.path} is larger than {limit:,} bytes; narrow "
                            "the request (filters, a smaller page)")
        chunks.append(chunk)
    return b"".join(chunks)


def _raise_for_status(tool: ToolDefinition, response: httpx.Response) -> None:
    status = response.status_code
    label = f"{tool.binding.method} {tool.binding.path}"
    if 300 <= status < 400:
        raise ToolError(f"The backend answered {label} with a {status} redirect, which "
                        "facade does not follow; tell the operator")
    if status >= 400:
        logger.info("backend answered %s %s for tool %s", status, response.reason_phrase,
                    tool.name)
        raise ToolError(f"The backend answered {status} {response.reason_phrase} for "
                        f"{label} (tool {tool.name}): {_hint(status)}")


def decode_json(tool: ToolDefinition, body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ToolError(f"The backend's answer to {tool.binding.method} {tool.binding.path} "
                        "is not valid JSON") from exc
