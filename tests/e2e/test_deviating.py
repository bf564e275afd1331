"""End to end: backends that deviate from their spec, through the official `mcp` client.

`mcp`'s ClientSession validates every `structuredContent` against the tool's
`outputSchema` and raises when it does not match. Over stdio and over streamable HTTP,
against tests/deviating_backend.py on 127.0.0.1: each common deviation arrives unchanged
and the client accepts it; with `response.validate: strict` the call is a tool error; an
answer that is not JSON is a clear tool error, never a client-side exception.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.client import Client as SDKClient
from mcp.client.stdio import StdioServerParameters

from deviating_backend import CASES, MODEL, model
from log_support import records

from .conftest import ROOT, child_env, free_port, stop, wait_for_port

pytestmark = pytest.mark.integration

CONFIG = ROOT / "tests" / "data" / "deviating" / "curation.yaml"
SECRET = MODEL["secret_weights"]


def served(case: str) -> dict[str, Any]:
    """What the agent gets for `case`: the backend's model, less what the curation redacts."""
    return {k: v for k, v in model(case).items() if k != "secret_weights"}


def command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "facade", "serve", "--config", str(CONFIG), *extra]


@asynccontextmanager
async def stdio_client(url: str, workdir: Path) -> AsyncIterator[SDKClient]:
    cmd = command()
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], cwd=str(workdir),
                                   env=child_env(url, DEVIATING_URL=url))
    async with SDKClient(params, mode="legacy") as client:
        yield client


@pytest.fixture(scope="module")
def http_url(deviating_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("deviating-http")
    log = workdir / "server.log"
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command("--transport", "http", "--host", "127.0.0.1", "--port", str(port)),
            env=child_env(deviating_url, DEVIATING_URL=deviating_url), cwd=workdir,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(proc, port, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)
    text = log.read_text(errors="replace")
    assert SECRET not in text and "last tuesday" not in text  # types are logged, not values


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def ok(client: SDKClient, tool: str, case: str) -> Any:
    result = await client.call_tool(tool, {"case": case})  # raises if the client rejects it
    assert result.is_error is False, text_of(result)
    assert SECRET not in result.model_dump_json()
    return result.structured_content


async def refused(client: SDKClient, tool: str, case: str) -> str:
    result = await client.call_tool(tool, {"case": case})
    assert result.is_error is True, result
    assert result.structured_content is None
    return text_of(result)


async def exercise(client: SDKClient) -> None:
    """Every deviation, tolerant then strict, and the answers that are not the JSON."""
    assert await ok(client, "get_model_strict", "ok") == served("ok")
    for case, (_, (path, kind)) in CASES.items():
        assert await ok(client, "get_model", case) == served(case), case
        listed = await ok(client, "list_models", case)
        assert listed["data"][1] == served(case), case
        message = await refused(client, "get_model_strict", case)
        assert f"does not match its documented schema at {path}: " in message, message
        assert f"({kind})" in message
        message = await refused(client, "list_models_strict", case)
        assert f"at data[].{path}: " in message, message

    # GitHub: `pushed_at: null`, in a oneOf of two objects, served as an object.
    assert await ok(client, "get_user", "null") == {"login": "octocat", "id": 1,
                                                     "pushed_at": None}
    # DigitalOcean: an allOf, served as an object, "5.00" where a number is documented.
    assert await ok(client, "get_size", "any") == {"slug": "s-1vcpu-1gb",
                                                    "price_monthly": "5.00", "links": {}}
    # A top-level array: wrapped, whatever its items are.
    assert await ok(client, "list_tags", "mixed") == {"result": ["a", 2, None]}
    assert "at []: integer where string is documented" in await refused(
        client, "list_tags_strict", "mixed")
    # An array where an object is documented: the data, under `result`; strict refuses.
    assert await ok(client, "get_model", "array") == {"result": [served("ok")]}
    assert "at the result: array where object is documented" in await refused(
        client, "get_model_strict", "array")
    # Not the documented JSON at all: a clear tool error in either mode.
    for tool in ("get_model", "get_model_strict"):
        assert "with text/html, which facade does not pass on" in await refused(
            client, tool, "html")
        assert "with an empty body where the spec documents a JSON result" in await refused(
            client, tool, "empty")


async def test_over_stdio(deviating_url: str, tmp_path: Path) -> None:
    async with stdio_client(deviating_url, tmp_path) as client:
        await exercise(client)


async def test_over_streamable_http_and_counted_in_metrics(http_url: str) -> None:
    async with SDKClient(http_url + "/mcp", mode="legacy") as client:
        listing = (await client.list_tools()).tools
        assert {t.name for t in listing} >= {"get_model", "get_user", "get_size"}
        await exercise(client)
    metrics = httpx.get(http_url + "/metrics", trust_env=False).text
    for kind in ("null", "type", "enum", "format", "missing_required", "extra_property"):
        assert f'facade_response_deviations_total{{kind="{kind}",tool="get_model"}}' in metrics
    # Strict tools count what they refuse too: one per call, path and kind.
    assert 'facade_response_deviations_total{kind="null",tool="get_model_strict"} ' \
           f'{sum(k == "null" for _, (_, k) in CASES.values()):.1f}\n' in metrics
    assert 'facade_response_deviations_total{kind="null",tool="get_user"} 1.0\n' in metrics
    assert 'facade_response_deviations_total{kind="type",tool="list_tags_strict"} 1.0\n' \
        in metrics
    assert 'kind="enum",tool="get_user"' not in metrics


def test_facade_call_prints_the_deviation_on_stderr(deviating_url: str,
                                                     tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "facade", "call", "--config", str(CONFIG), "get_model",
         "--args", '{"case": "numeric_string_integer"}'], capture_output=True, text=True,
        env=child_env(deviating_url, DEVIATING_URL=deviating_url), cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"created": "42"' in done.stdout
    assert "deviates from its documented schema at created: string where integer is " \
           "documented (type)" in done.stderr
    # The type is logged, never the value (a record's time and request id aside).
    logged = [{k: v for k, v in r.items() if k not in ("ts", "request_id")}
              for r in records(done.stderr)]
    assert "42" not in json.dumps(logged).replace("GET /models/{case}", "")
