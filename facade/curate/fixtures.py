"""Contract examples: record a backend answer once, replay it through every later curation.

`facade call TOOL --args JSON --record NAME` writes `fixtures/<tool>/<NAME>.json` beside
the curation. It holds the arguments, the backend's answer as facade received it (status,
content type, decoded body, and `Retry-After` when there was one) and, as the golden
output, the result the tool returned. Nothing of the request is stored beyond the
operation it called: no URL, no headers, no credentials. In the body, the values of keys
the tool redacts by name are masked (`***`), and so is the façade's credential if the
backend echoes it; an error body facade never shows the model is not kept at all.

`facade test` replays each fixture through the *current* curation, offline: the recorded
answer is served by an `httpx.MockTransport`, so renaming an argument, changing
`response.include` or a redaction shows up as a difference from the golden result,
printed as a diff. `--update` accepts the new results as the golden ones.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import difflib
import fnmatch
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from facade.call.scrub import MASK, scrub, scrub_data
from facade.tools import BackendSettings, Facade

__all__ = ["FIXTURE_NAME", "FORMAT", "Fixture", "FixtureError", "RecordingTransport",
           "Replay", "call_tool", "find_fixtures", "fixture_path", "read_fixture",
           "recorded_fixture", "replay_all", "result_of", "updated", "write_fixture"]

FORMAT = "facade-fixture"
FORMAT_VERSION = 1
FIXTURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
DEFAULT_DIR = "fixtures"
# What of the backend's headers facade reads: nothing else is recorded (no cookies).
_KEPT_HEADERS = ("content-type", "retry-after")


class FixtureError(Exception):
    """A fixture cannot be recorded or read; the message says why, in one line."""


@dataclass(frozen=True)
class Fixture:
    """One recorded exchange and the result the tool gave for it."""

    tool: str
    operation: str  # "METHOD /path" the tool called when it was recorded
    arguments: dict[str, Any]
    status: int
    headers: dict[str, str]  # only `_KEPT_HEADERS`
    body: bytes
    result: dict[str, Any]  # the golden output: see `result_of`
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        response: dict[str, Any] = {"status": self.status}
        if self.reason:
            response["reason"] = self.reason
        response["headers"] = self.headers
        response.update(_encode_body(self.body, self.headers.get("content-type", "")))
        return {"format": FORMAT, "version": FORMAT_VERSION, "tool": self.tool,
                "operation": self.operation, "arguments": self.arguments,
                "response": response, "result": self.result}


def fixture_path(config: Path, tool: str, name: str, directory: Path | None = None) -> Path:
    """Where fixture `name` of `tool` lives: `fixtures/<tool>/<name>.json` by default."""
    if not FIXTURE_NAME.match(name):
        raise FixtureError(f"fixture name {name!r}: use letters, digits, '.', '_' and '-'")
    return (directory or config.parent / DEFAULT_DIR) / tool / f"{name.removesuffix('.json')}.json"


def find_fixtures(config: Path, directory: Path | None = None) -> list[Path]:
    """Every `<tool>/<name>.json` under the fixtures folder, sorted."""
    root = directory or config.parent / DEFAULT_DIR
    return sorted(root.glob("*/*.json")) if root.is_dir() else []


def _encode_body(body: bytes, content_type: str) -> dict[str, Any]:
    """JSON bodies as JSON (readable in review), other text as text, the rest base64."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return {"json": json.loads(body, parse_constant=_refuse)} if body.strip() \
                else {"text": ""}
        except (ValueError, RecursionError):
            pass  # kept as the bytes it was, so replay fails the way the call did
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body).decode("ascii")}


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _decode_body(response: Mapping[str, Any]) -> bytes:
    if "json" in response:
        return json.dumps(response["json"], ensure_ascii=False).encode()
    if "base64" in response:
        return base64.b64decode(response["base64"])
    return str(response.get("text", "")).encode()


def write_fixture(path: Path, fixture: Fixture) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fixture.to_json(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def read_fixture(path: Path) -> Fixture:
    """Raises `FixtureError` when the file is not a fixture this version can replay."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FixtureError(f"cannot read it: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FixtureError(f"not a fixture (no \"format\": {FORMAT!r})")
    if data.get("version") != FORMAT_VERSION:
        raise FixtureError(f"fixture version {data.get('version')!r}; this facade reads "
                           f"version {FORMAT_VERSION}")
    try:
        response = data["response"]
        headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        return Fixture(
            tool=str(data["tool"]), operation=str(data["operation"]),
            arguments=dict(data["arguments"]), status=int(response["status"]),
            headers={k: v for k, v in headers.items() if k in _KEPT_HEADERS},
            body=_decode_body(response), result=dict(data["result"]),
            reason=str(response.get("reason", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FixtureError(f"malformed fixture: {type(exc).__name__} {exc}") from None


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests on and keeps the last answer (decoded, capped at `limit` bytes + 1
    so that the façade's own size check still sees an oversized one)."""

    def __init__(self, limit: int, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.limit = limit
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.last: tuple[int, str, dict[str, str], bytes] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        chunks, size = [], 0
        try:
            async for chunk in httpx.Response(
                    response.status_code, headers=response.headers, stream=response.stream,
                    request=request).aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > self.limit:
                    break
        finally:
            await response.aclose()
        body = b"".join(chunks)[:self.limit + 1]
        headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        reason = response.extensions.get("reason_phrase", b"")
        reason = reason.decode("ascii", "replace") if isinstance(reason, bytes) else ""
        self.last = (response.status_code, reason, headers, body)
        return _response(response.status_code, reason, headers, body)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _response(status: int, reason: str, headers: Mapping[str, str], body: bytes
              ) -> httpx.Response:
    extensions = {"reason_phrase": reason.encode("ascii", "replace")} if reason else {}
    return httpx.Response(status, headers=dict(headers), content=body, extensions=extensions)


def result_of(result: Any) -> dict[str, Any]:
    """The golden form of a `fastmcp` call result: what the agent gets, as plain JSON.

    `{"error": message}` for a tool error; otherwise `structured` (the structured
    content, or null) and `content`: the text blocks that do not repeat it (notes about
    cut arrays, or the whole text of a text answer).
    """
    texts = [getattr(block, "text", "") for block in result.content]
    if result.is_error:
        return {"error": "\n".join(texts)}
    structured = result.structured_content
    return {"structured": structured,
            "content": texts[1:] if structured is not None else texts}


def recorded_fixture(tool: str, operation: str, arguments: dict[str, Any],
                     transport: RecordingTransport, result: Any,
                     masked: tuple[str, ...] = (), error_bodies: bool = False) -> Fixture:
    """The fixture for a call just made through `transport`. In a JSON answer the values
    of keys matching the `masked` globs (the tool's redaction globs) are replaced by
    `***`: the keys stay, so replaying still exercises their redaction. The body of an
    error answer is kept only with `error_bodies` (when `backend.error_excerpt` shows
    part of it): otherwise nothing of it reaches the agent, nor the file.

    Raises:
        FixtureError: no answer reached facade (arguments refused, backend unreachable).
    """
    if transport.last is None:
        why = result_of(result).get("error", "")
        raise FixtureError("nothing to record: no answer came back from the backend"
                           + (f" ({why})" if why else ""))
    status, reason, headers, body = transport.last
    if status >= 300 and not error_bodies:
        body = b""
    if masked and "json" in (encoded := _encode_body(body, headers.get("content-type", ""))):
        data = _mask(encoded["json"], tuple(g.lower() for g in masked))
        body = json.dumps(data, ensure_ascii=False).encode()
    return Fixture(tool=tool, operation=operation, arguments=scrub_data(arguments),
                   status=status, headers=headers, body=_scrub_bytes(body),
                   result=scrub_data(result_of(result)), reason=reason)


def _mask(data: Any, globs: tuple[str, ...]) -> Any:
    if isinstance(data, list):
        return [_mask(v, globs) for v in data]
    if not isinstance(data, dict):
        return data
    return {k: MASK if any(fnmatch.fnmatchcase(k.lower(), g) for g in globs)
            else _mask(v, globs) for k, v in data.items()}


def _scrub_bytes(body: bytes) -> bytes:
    # latin-1 maps bytes to characters one to one, so scrubbing keeps every other byte.
    return scrub(body.decode("latin-1")).encode("latin-1")


async def call_tool(server: Any, tool: str, arguments: dict[str, Any]) -> Any:
    """One call through an in-memory MCP client, as an agent makes it."""
    from fastmcp import Client

    async with Client(server) as client:
        return await client.call_tool(tool, arguments, raise_on_error=False)


@dataclass(frozen=True)
class Replay:
    """The outcome of one fixture: `ok`, or a difference / problem to show."""

    path: Path
    fixture: Fixture | None
    result: dict[str, Any] | None = None  # the result under the current curation
    problem: str | None = None  # why it could not be compared

    @property
    def ok(self) -> bool:
        return self.problem is None and self.fixture is not None and \
            self.result == self.fixture.result

    def diff(self) -> Iterator[str]:
        """The golden result against the current one, as a unified diff."""
        assert self.fixture is not None and self.result is not None
        before = _pretty(self.fixture.result).splitlines()
        after = _pretty(self.result).splitlines()
        yield from difflib.unified_diff(before, after, "golden", "now", lineterm="", n=2)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def replay_all(facade: Facade, paths: list[Path]) -> list[Replay]:
    """Replay every fixture through `facade`, offline."""
    return asyncio.run(_replay_all(facade, paths))


async def _replay_all(facade: Facade, paths: list[Path]) -> list[Replay]:
    # A recorded error is an expected result here, not news for the log.
    logger = logging.getLogger("fastmcp.server.server")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return [await _replay(facade, path) for path in paths]
    finally:
        logger.setLevel(level)


async def _replay(facade: Facade, path: Path) -> Replay:
    from facade.serve.server import build_server

    try:
        fixture = read_fixture(path)
    except FixtureError as exc:
        return Replay(path, None, problem=str(exc))
    definition = next((t for t in facade.tools if t.name == fixture.tool), None)
    if definition is None:
        return Replay(path, fixture, problem=f"the curation has no tool {fixture.tool!r} "
                      "any more")
    operation = f"{definition.binding.method} {definition.binding.path}"
    if operation != fixture.operation:
        return Replay(path, fixture, problem=f"{fixture.tool} now calls {operation}, not "
                      f"{fixture.operation} as recorded: record it again")

    def answer(request: httpx.Request) -> httpx.Response:
        return _response(fixture.status, fixture.reason, fixture.headers, fixture.body)

    # One attempt (a replayed 503 answers the same every time), a fresh breaker per
    # fixture, and no credentials nor caller identity (no token exchange, no identity
    # headers, no claim conditions): nothing leaves the process.
    def offline(backend: BackendSettings) -> BackendSettings:
        return dataclasses.replace(backend, auth=None, retry_attempts=0, token_exchange=None,
                                   identity_headers=())

    server = build_server(dataclasses.replace(
        facade, backend=offline(facade.backend),
        backends={api: offline(b) for api, b in facade.backends.items()},
        tools=tuple(dataclasses.replace(t, claims=()) for t in facade.tools)),
        environ={}, transport=httpx.MockTransport(answer))
    result = await call_tool(server, fixture.tool, fixture.arguments)
    return Replay(path, fixture, result_of(result))


def updated(replay: Replay) -> Fixture:
    """The fixture with the current result as its golden one."""
    assert replay.fixture is not None and replay.result is not None
    return dataclasses.replace(replay.fixture, result=replay.result)
