"""Hints that point at the fix: suggestions searched where the answer is, and messages in
the reader's terms (the curator's at load time, the agent's argument names at call time)."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from hostile_support import ENV, client_for, error_of

from facade.cli import main
from facade.loading.loader import load
from facade.serve.server import build_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS_FILES = HERE / "data" / "problems" / "models-files.yaml"


def facade_cli(path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """A facade command as a curator runs it, from the curation's folder."""
    monkeypatch.chdir(path.parent)
    result = CliRunner().invoke(main, [*args, "--config", path.name])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def models_files(tmp_path: Path, text: str) -> Path:
    shutil.copy(MODELS_FILES, tmp_path / "models-files.yaml")
    path = tmp_path / "curation.yaml"
    path.write_text("version: 1\nspec: models-files.yaml\n"
                    'backend: {base_url: "http://127.0.0.1:9/v1"}\n'
                    + textwrap.dedent(text).lstrip("\n"))
    return path


# -- load time --------------------------------------------------------------------------

def test_a_response_path_is_suggested_from_the_whole_schema(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = models_files(tmp_path, """
        tools:
          list_models:
            operation: listModels
            response: {include: [data.idd, object, owner]}
          list_files:
            operation: listFiles
            response: {redact: [data.file_name]}
        """)
    code, _, err = facade_cli(path, monkeypatch, "check")
    assert code == 1
    assert err.splitlines() == [
        # by leaf name and by closeness of the whole path: not only the top-level fields
        "curation.yaml:7:26: tools.list_models.response.include[0]: 'data.idd' is not in "
        "the response schema (did you mean 'data[].id'?)",
        "curation.yaml:7:44: tools.list_models.response.include[2]: 'owner' is not in the "
        "response schema (did you mean 'data[].owned_by'?)",
        "curation.yaml:10:25: tools.list_files.response.redact[0]: 'data.file_name' is not "
        "in the response schema (did you mean 'data[].filename'?)",
        "3 problem(s) found.",
    ]


@pytest.mark.parametrize(("read_only", "expected"), [
    ("true", "(did you mean 'retrieveModel' or 'listModels'?)"),
    ("false", "(did you mean 'deleteModel' or 'deleteFile' or 'retrieveModel'?)"),
], ids=["read-only", "read-write"])
def test_a_read_only_curation_is_offered_read_only_operations(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: str, expected: str
) -> None:
    path = models_files(tmp_path, f"""
        read_only: {read_only}
        tools:
          get_model: {{operation: deleteModl}}
        """)
    code, _, err = facade_cli(path, monkeypatch, "check")
    assert code == 1
    assert err.splitlines()[0] == (
        "curation.yaml:6:26: tools.get_model.operation: unknown operation 'deleteModl' in "
        f"models-files.yaml {expected}")


def test_writes_are_offered_only_when_no_read_is_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = models_files(tmp_path, """
        tools:
          remove_file: {operation: deleteFil}
        """)
    code, _, err = facade_cli(path, monkeypatch, "check")
    assert code == 1
    assert err.splitlines()[0] == (
        "curation.yaml:5:28: tools.remove_file.operation: unknown operation 'deleteFil' in "
        "models-files.yaml (the closest operations are not read-only: 'deleteFile' or "
        "'deleteModel' or 'createFile'; a read-only façade serves only GET and HEAD)")


def test_a_missing_spec_file_hint_fits_how_it_was_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = tmp_path / "nowhere" / "api.yaml"
    path = models_files(tmp_path, "tools: {list_models: {operation: listModels}}\n")
    path.write_text(path.read_text().replace("spec: models-files.yaml", f"spec: {absolute}"))
    code, _, err = facade_cli(path, monkeypatch, "check")
    assert code == 1
    assert err.splitlines()[0] == f"curation.yaml:2:7: spec: spec file '{absolute}' not found"

    # A relative path is looked for beside the curation; checked from elsewhere, the hint
    # says where that was.
    path.write_text(path.read_text().replace(f"spec: {absolute}", "spec: specs/api.yaml"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = CliRunner().invoke(main, ["check", "--config", "../curation.yaml"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "../curation.yaml:2:7: spec: spec file 'specs/api.yaml' not found (`spec` is "
        "relative to the curation file: facade looked for ../specs/api.yaml)")


def test_a_default_description_names_the_agents_arguments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # retrieveModel has no summary or description: the tool is described by its operation,
    # with the path parameter under the name the agent passes.
    path = models_files(tmp_path, """
        tools:
          get_model:
            operation: retrieveModel
            params: {model: {rename: model_id}}
        """)
    code, out, _ = facade_cli(path, monkeypatch, "tools", "--json")
    assert code == 0
    [tool] = json.loads(out)["tools"]
    assert tool["description"] == "GET /models/{model_id}"
    assert list(tool["inputSchema"]["properties"]) == ["model_id"]


# -- call time ----------------------------------------------------------------------------

async def test_call_errors_name_the_agents_arguments(example_env: dict[str, str]) -> None:
    # The bundled curation renames itemId to sku; the agent never sees {itemId}.
    facade = load(ROOT / "curation.yaml")
    async with Client(build_server(facade)) as client:
        result = await client.call_tool("get_item", {"sku": "SKU-404"}, raise_on_error=False)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "for GET /items/{sku} (tool get_item): nothing found" in text
    assert "itemId" not in text


@pytest.mark.parametrize(("status", "without", "with_auth"), [
    (401, "the backend wants credentials and the façade has none configured; the operator "
          "must set backend.auth in the curation.",
     "the façade's backend credentials were refused; the operator must fix them."),
    (403, "the backend refused access, and the façade sends it no credentials; the operator "
          "may need to set backend.auth in the curation.",
     "the façade is not allowed to do this; the operator must grant access."),
], ids=["401", "403"])
async def test_a_refusal_without_credentials_says_none_are_configured(
        tmp_path: Path, faulty_url: str, status: int, without: str, with_auth: str) -> None:
    for auth, expected in ((None, without), ({"bearer_env": "FAULTY_TOKEN"}, with_auth)):
        async with client_for(tmp_path, faulty_url, auth=auth, headers={}) as client:
            result = await client.call_tool("behave", {"mode": "status", "status": status},
                                            raise_on_error=False)
        assert error_of(result).endswith(f"for GET /b/{{mode}} (tool behave): {expected}")
        assert ENV["FAULTY_TOKEN"] not in error_of(result)


@pytest.mark.integration
async def test_a_refusal_without_credentials_over_stdio(example_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    # The bundled curation without `backend.auth`, against the example backend, which wants
    # a bearer token: a real `facade serve` child, driven by an MCP client over stdio.
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    config = tmp_path / "curation.yaml"
    config.write_text((ROOT / "curation.yaml").read_text().replace(
        "  auth: {bearer_env: INVENTORY_TOKEN}\n", ""))
    transport = StdioTransport(
        command=sys.executable,
        args=["-m", "facade", "serve", "--config", str(config)],
        env={"INVENTORY_URL": example_env["INVENTORY_URL"], "PYTHONUNBUFFERED": "1"},
        cwd=str(tmp_path), keep_alive=False, log_file=tmp_path / "stderr.log")
    async with Client(transport) as client:
        result: Any = await client.call_tool("get_item", {"sku": "SKU-1042"},
                                             raise_on_error=False)
    assert result.is_error
    assert result.content[0].text == (
        "The backend answered 401 Unauthorized for GET /items/{sku} (tool get_item): the "
        "backend wants credentials and the façade has none configured; the operator must "
        "set backend.auth in the curation.")


@pytest.mark.parametrize(("value", "message"), [
    ("../r", "'../r' contains the dot segment '..', which could change the endpoint called"),
    ("..", "'..' is a dot segment, which could change the endpoint called"),
    ("a/.../b", "'a/.../b' contains the segment '...': dots only, which a path value may "
                "not hold"),
    ("a//b", "'a//b' contains an empty path segment"),
], ids=["leading-dots", "dots", "three-dots", "empty"])
async def test_dot_segments_are_named_for_what_they_are(tmp_path: Path, faulty_url: str,
                                                        value: str, message: str) -> None:
    tools = {"get_item": {"operation": "getItem", "params": {
        "tenant": {"value": "acme"}, "id": {"allow": ["/"]}}}}
    async with client_for(tmp_path, faulty_url, tools=tools) as client:
        result = await client.call_tool("get_item", {"id": value}, raise_on_error=False)
    assert error_of(result) == f"Invalid arguments for get_item: argument 'id': {message}"
