"""The log stream in one process: an unexpected failure is still an ERROR, with its
traceback inside the record and no secret in it; `facade call` and the options."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastmcp import Client
from log_support import audit, records

from facade import load
from facade.call.scrub import register_secrets
from facade.call.upstream import Upstream
from facade.cli import main
from facade.serve.logs import configured, dict_config
from facade.serve.observe import observers_for
from facade.serve.server import build_server

from conftest import TOKEN

ROOT = Path(__file__).resolve().parent.parent
NOT_FOUND = ("The backend answered 404 Not Found for GET /items/{sku} (tool get_item): "
             "nothing found; check the identifier.")


async def _call_a_broken_tool(monkeypatch: pytest.MonkeyPatch, example_env: dict[str, str]
                              ) -> Any:
    """get_item, with a bug in the call path whose message carries the backend token."""
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"a bug that mentions {TOKEN}")

    monkeypatch.setattr(Upstream, "send", broken)
    facade = load(ROOT / "curation.yaml")
    register_secrets([TOKEN])
    server = build_server(facade, environ=example_env, observer=observers_for(facade))
    async with Client(server) as client:
        return await client.call_tool("get_item", {"sku": "SKU-1042"}, raise_on_error=False)


async def test_an_unexpected_error_is_one_error_record_with_its_traceback(
        monkeypatch: pytest.MonkeyPatch, example_env: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    with configured("json", "info"):
        result = await _call_a_broken_tool(monkeypatch, example_env)
    assert result.is_error  # masked for the model: fastmcp's generic message
    err = capsys.readouterr().err
    found = records(err)  # the traceback is inside a line, not lines of its own
    [error] = [r for r in found if r["level"] == "error"]
    assert (error["logger"], error["message"]) == ("fastmcp.server.server",
                                                   "Error calling tool 'get_item'")
    assert error["exc_info"].startswith("Traceback (most recent call last):")
    assert error["exc_info"].endswith("RuntimeError: a bug that mentions ***")
    assert audit(err)[0]["outcome"] == "error"
    assert TOKEN not in err


async def test_in_text_only_a_traceback_continues_on_indented_lines(
        monkeypatch: pytest.MonkeyPatch, example_env: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    with configured("text", "info"):
        await _call_a_broken_tool(monkeypatch, example_env)
    lines = capsys.readouterr().err.splitlines()
    starts = [line for line in lines if not line.startswith("    ")]
    assert all(re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z [A-Z]+ +[\w.]+: ", x) for x in starts)
    error = next(i for i, line in enumerate(lines) if " ERROR " in line)
    assert lines[error + 1] == "    Traceback (most recent call last):"
    assert lines[-1] != lines[error]
    assert TOKEN not in "\n".join(lines)


def test_the_previous_logging_comes_back_after_the_block() -> None:
    fastmcp_logger = logging.getLogger("fastmcp")
    before = (logging.getLogger().handlers[:], fastmcp_logger.handlers[:],
              fastmcp_logger.propagate)
    with configured("json", "debug"):
        assert [type(h).__name__ for h in logging.getLogger().handlers] == ["StderrHandler"]
        assert fastmcp_logger.handlers == [] and fastmcp_logger.propagate
    assert (logging.getLogger().handlers, fastmcp_logger.handlers,
            fastmcp_logger.propagate) == before


def test_call_prints_its_answer_plainly_and_no_fastmcp_error_line(
        example_env: dict[str, str]) -> None:
    args = ["call", "get_item", "--config", str(ROOT / "curation.yaml"), "--args",
            '{"sku": "SKU-9999"}']
    result = CliRunner().invoke(main, args)
    assert (result.exit_code, result.stderr) == (1, NOT_FOUND + "\n")
    result = CliRunner().invoke(main, [*args, "--log-level", "debug", "--log-format", "json"])
    *logged, answer = result.stderr.splitlines()
    assert answer == NOT_FOUND  # the command's own output stays a plain line
    debug = records("\n".join(logged))
    assert {r["level"] for r in debug} == {"debug"}
    assert any(r["message"] == "backend answered 404 Not Found for tool get_item"
               for r in debug)


@pytest.mark.parametrize(("option", "env", "message"), [
    (["--log-format", "xml"], {}, "Invalid value for '--log-format'"),
    ([], {"FACADE_LOG_LEVEL": "verbose"}, "Invalid value for '--log-level'"),
], ids=["format", "level-env"])
def test_a_bad_format_or_level_is_a_usage_error(option: list[str], env: dict[str, str],
                                                message: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--config", "nowhere.yaml", *option], env=env)
    assert result.exit_code == 2 and message in result.stderr


def test_the_config_handed_to_uvicorn_keeps_the_audit_log_at_every_level() -> None:
    config = dict_config("json", "error")
    assert config["root"]["level"] == "ERROR"
    assert config["loggers"]["facade.audit"] == {"level": "INFO"}
    assert config["loggers"]["fastmcp"] == {"handlers": [], "propagate": True,
                                            "level": "NOTSET"}
    with pytest.raises(ValueError, match="log format 'xml' is not one of json, text"):
        dict_config("xml", "info")
