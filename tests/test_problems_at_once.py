"""`facade check` reports every problem at once: a shape problem in one tool (a misspelt
key, an invalid name, a value of the wrong type) does not hide the cross-reference problems
of the other tools, nor those of the valid parts of the same tool."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SPECS_CORPUS
from facade.cli import main

HERE = Path(__file__).resolve().parent
MODELS_FILES = HERE / "data" / "problems" / "models-files.yaml"
GITHUB = SPECS_CORPUS / "WillAbides__octo-go@fa158bd" / "api.github.com.json"

Write = Callable[..., Path]

HEAD = """\
version: 1
spec: specs/inventory.yaml
backend: {base_url: "http://127.0.0.1:9/v1"}
"""


def check(path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, list[str]]:
    """`facade check` as a curator runs it, from the curation's folder: exit code and the
    lines on stderr."""
    monkeypatch.chdir(path.parent)
    result = CliRunner().invoke(main, ["check", "--config", path.name, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stderr.splitlines()


def models_files(tmp_path: Path, text: str) -> Path:
    """A curation over tests/data/problems/models-files.yaml, copied beside it."""
    shutil.copy(MODELS_FILES, tmp_path / "models-files.yaml")
    path = tmp_path / "curation.yaml"
    path.write_text("version: 1\nspec: models-files.yaml\n"
                    'backend: {base_url: "http://127.0.0.1:9/v1"}\n' + text)
    return path


def test_five_mistakes_in_five_tools_in_one_run(write_curation: Write,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_curation(HEAD + """\
tools:
  list_items:
    operation: listItems
    descripton: List the items.
  get_item:
    operation: getItm
  get_stock:
    operation: getItemStock
    params:
      itemID: {rename: sku}
  Get-Category:
    operation: getCategory
  export_report:
    operation: exportStockReport
    params:
      X-Tenant: {value: [acme]}
""")
    code, lines = check(path, monkeypatch)
    assert code == 1
    assert lines == [
        "curation.yaml:7:5: tools.list_items.descripton: unknown key 'descripton' (did you "
        "mean 'description'?)",
        "curation.yaml:9:16: tools.get_item.operation: unknown operation 'getItm' in "
        "specs/inventory.yaml (did you mean 'getItem' or 'getItemStock'?)",
        "curation.yaml:13:7: tools.get_stock.params.itemID: unknown parameter 'itemID' (did "
        "you mean 'itemId'?)",
        "curation.yaml:14:3: tools.Get-Category: invalid name 'Get-Category': string should "
        "match pattern '^[a-z][a-z0-9_]{0,63}$' (tool names are snake_case: "
        "^[a-z][a-z0-9_]{0,63}$)",
        "curation.yaml:19:25: tools.export_report.params.X-Tenant.value: value ['acme'] does "
        "not fit header parameter 'X-Tenant': ['acme'] is not of type 'string'",
        "5 problem(s) found.",
    ]


def test_a_misspelt_key_does_not_hide_the_other_tools(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # As found wrapping a hosted-model API: `descripton` in list_models hid both of these.
    path = models_files(tmp_path, """\
tools:
  list_models:
    operation: listModels
    descripton: The models you can use.
  get_file:
    operation: retrieveFile
    params:
      fileId: {rename: file}
  list_files:
    operation: listFile
""")
    code, lines = check(path, monkeypatch)
    assert code == 1
    assert lines == [
        "curation.yaml:7:5: tools.list_models.descripton: unknown key 'descripton' (did you "
        "mean 'description'?)",
        "curation.yaml:11:7: tools.get_file.params.fileId: unknown parameter 'fileId' (did "
        "you mean 'file_id'?)",
        "curation.yaml:13:16: tools.list_files.operation: unknown operation 'listFile' in "
        "models-files.yaml (did you mean 'listFiles'?)",
        "3 problem(s) found.",
    ]


def test_an_invalid_name_does_not_hide_a_write_in_a_read_only_curation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = models_files(tmp_path, """\
tools:
  list_files: {operation: listFiles}
  Upload-File:
    operation: createFile
""")
    code, lines = check(path, monkeypatch)
    assert code == 1
    assert lines == [
        "curation.yaml:6:3: tools.Upload-File: invalid name 'Upload-File': string should "
        "match pattern '^[a-z][a-z0-9_]{0,63}$' (tool names are snake_case: "
        "^[a-z][a-z0-9_]{0,63}$)",
        "curation.yaml:7:16: tools.Upload-File.operation: POST /files is not read-only: a "
        "read-only façade serves only GET and HEAD (remove this tool, or set `read_only: "
        "false` at the top)",
        "2 problem(s) found.",
    ]


@pytest.mark.corpus
def test_an_invalid_name_does_not_hide_a_write_in_the_github_spec(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "curation.yaml"
    path.write_text(f"version: 1\nspec: {GITHUB}\n"
                    "backend: {base_url: 'https://api.github.com'}\n"
                    "tools:\n"
                    "  get_repo: {operation: repos/get}\n"
                    "  Open-Issue: {operation: issues/create}\n")
    code, lines = check(path, monkeypatch)
    assert code == 1
    assert lines[0].startswith("curation.yaml:6:3: tools.Open-Issue: invalid name")
    assert lines[1:] == [
        "curation.yaml:6:27: tools.Open-Issue.operation: POST /repos/{owner}/{repo}/issues "
        "is not read-only: a read-only façade serves only GET and HEAD (remove this tool, "
        "or set `read_only: false` at the top)",
        "2 problem(s) found.",
    ]


def test_the_valid_parts_of_a_broken_entry_are_still_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One entry with an invalid name, a misspelt key, an unknown parameter and a response
    # path not in the schema: each is reported; a prompt naming the entry is not also told
    # that it names an unknown tool.
    path = models_files(tmp_path, """\
tools:
  Get-File:
    operation: retrieveFile
    titel: A file
    params:
      fileId: {rename: file}
    response:
      include: [id, filenme]
prompts:
  inspect:
    template: Look at a file.
    tools: [Get-File]
""")
    code, lines = check(path, monkeypatch)
    assert code == 1
    assert lines == [
        "curation.yaml:5:3: tools.Get-File: invalid name 'Get-File': string should match "
        "pattern '^[a-z][a-z0-9_]{0,63}$' (tool names are snake_case: "
        "^[a-z][a-z0-9_]{0,63}$)",
        "curation.yaml:7:5: tools.Get-File.titel: unknown key 'titel' (did you mean "
        "'title'?)",
        "curation.yaml:9:7: tools.Get-File.params.fileId: unknown parameter 'fileId' (did "
        "you mean 'file_id'?)",
        "curation.yaml:11:21: tools.Get-File.response.include[1]: 'filenme' is not in the "
        "response schema (did you mean 'filename'?)",
        "4 problem(s) found.",
    ]


def test_an_entry_that_cannot_be_read_is_reported_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No operation: nothing of the entry can be checked, and nothing else is said about it;
    # a missing backend gets a stand-in, so the tools are still checked.
    path = tmp_path / "curation.yaml"
    shutil.copy(MODELS_FILES, tmp_path / "models-files.yaml")
    path.write_text("version: 1\nspec: models-files.yaml\ntools:\n"
                    "  get_file: {description: A file}\n"
                    "  list_files: {operation: listFile}\n")
    code, lines = check(path, monkeypatch)
    assert code == 1
    assert lines == [
        "curation.yaml:1:1: backend: missing required key 'backend'",
        "curation.yaml:4:3: tools.get_file.operation: missing required key 'operation'",
        "curation.yaml:5:27: tools.list_files.operation: unknown operation 'listFile' in "
        "models-files.yaml (did you mean 'listFiles'?)",
        "3 problem(s) found.",
    ]


def test_every_api_of_a_multi_api_curation_is_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(MODELS_FILES, tmp_path / "models-files.yaml")
    path = tmp_path / "curation.yaml"
    path.write_text("""\
version: 1
apis:
  models:
    namespace: ai
    spec: models-files.yaml
    backend: {base_url: "http://127.0.0.1:9/v1", timeout: soon}
    tools:
      list_models: {operation: listModels}
      Upload: {operation: createFile}
  Files:
    spec: models-files.yaml
    backend: {base_url: "http://127.0.0.1:9/v1"}
    tools:
      list_files: {operation: listFile}
""")
    code, lines = check(path, monkeypatch)
    assert code == 1
    assert [line.split(": ")[1] for line in lines[:-1]] == [
        "apis.models.backend.timeout",
        "apis.models.tools.Upload",
        "apis.models.tools.Upload.operation",
        "apis.Files",
        "apis.Files.tools.list_files.operation",
    ]
    assert "POST /files is not read-only" in lines[2]
    assert "unknown operation 'listFile'" in lines[4]
    assert lines[-1] == "5 problem(s) found."
