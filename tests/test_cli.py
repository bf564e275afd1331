"""The CLI as a curator uses it: exit codes, messages on stderr, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from facade.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


def test_check_ok_on_the_bundled_example() -> None:
    code, out, _ = run("check", "--config", str(ROOT / "curation.yaml"))
    assert code == 0
    assert "ok, 4 tool(s)" in out and "get_item" in out


def test_check_reports_problems_and_exits_1(write_curation: Callable[[str], Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_curation("version: 1\nspec: specs/inventory.yaml\nbackend: {base_url: "
                          "'http://127.0.0.1:9'}\ntools:\n  a:\n    operation: getItm\n"
                          "  b:\n    operation: deleteItem\n")
    monkeypatch.chdir(path.parent)  # messages name files relative to where check runs
    code, out, err = run("check", "--config", "curation.yaml")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "curation.yaml:6:16: tools.a.operation: unknown operation 'getItm' in specs/inventory.yaml "
        "(did you mean 'getItem' or 'getItemStock'?)",
        "curation.yaml:8:16: tools.b.operation: DELETE /items/{itemId} is not read-only: a "
        "read-only façade serves only GET and HEAD (remove this tool, or set `read_only: "
        "false` at the top)",
        "2 problem(s) found."]


def test_config_from_env_var() -> None:
    code, out, _ = run("check", env={"FACADE_CONFIG": str(ROOT / "curation.yaml")})
    assert code == 0 and "4 tool(s)" in out


def test_tools_json_is_the_exact_listing() -> None:
    code, out, err = run("tools", "--json", "--config", str(ROOT / "curation.yaml"))
    assert code == 0
    tools = json.loads(out)["tools"]
    assert [t["name"] for t in tools] == ["list_items", "get_item", "get_item_stock",
                                          "get_category"]
    get_item = tools[1]
    assert list(get_item["inputSchema"]["properties"]) == ["sku"]
    assert get_item["annotations"]["readOnlyHint"] is True
    assert "contact" not in json.dumps(get_item["outputSchema"])
    assert err.strip().endswith("bytes")


def test_call_runs_the_full_pipeline(example_env: dict[str, str]) -> None:
    code, out, err = run("call", "get_item", "--args", '{"sku": "SKU-1042"}',
                         "--config", str(ROOT / "curation.yaml"), env=example_env)
    assert code == 0, err
    item = json.loads(out)
    assert item["sku"] == "SKU-1042" and "internal_cost" not in item


def test_call_error_is_one_message(example_env: dict[str, str]) -> None:
    code, _, err = run("call", "get_item", "--args", '{"sku": "SKU-9"}',
                       "--config", str(ROOT / "curation.yaml"), env=example_env)
    assert code == 1
    assert err.splitlines()[-1] == ("The backend answered 404 Not Found for GET /items/{sku} "
                                    "(tool get_item): nothing found; check the identifier.")
    assert "db-password" not in err


def test_call_unknown_tool_suggests() -> None:
    code, _, err = run("call", "get_itme", "--config", str(ROOT / "curation.yaml"))
    assert code == 1 and "did you mean 'get_item'" in err


def test_call_rejects_non_json_args() -> None:
    code, _, err = run("call", "get_item", "--args", "{sku", "--config",
                       str(ROOT / "curation.yaml"))
    assert code == 2 and "not JSON" in err


def test_init_writes_a_starter_that_checks_once_uncommented(tmp_path: Path) -> None:
    out = tmp_path / "curation.yaml"
    code, _, err = run("init", "--spec", str(ROOT / "specs" / "inventory.yaml"),
                       "--output", str(out))
    assert code == 0, err
    text = out.read_text()
    lines = text.splitlines()
    gets = [i for i, line in enumerate(lines) if "operation:" in line]
    assert "getItem" in text and "deleteItem" in text
    assert text.index('"listItems"') < text.index('"createItem"')  # GET operations first
    assert "# writes: needs read_only: false" in text
    # Uncomment the first tool: the result must pass `check`.
    first = gets[0]
    lines[first - 1] = lines[first - 1].replace("  # ", "  ", 1)
    lines[first] = lines[first].replace("  #   ", "    ", 1)
    out.write_text("\n".join(lines) + "\n")
    code, stdout, err = run("check", "--config", str(out))
    assert code == 0, err
    assert "1 tool(s)" in stdout
    code, _, err = run("init", "--spec", str(ROOT / "specs" / "inventory.yaml"),
                       "--output", str(out))
    assert code == 1 and "already exists" in err


def test_python_dash_m_and_version() -> None:
    result = subprocess.run([sys.executable, "-m", "facade", "--version"], capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip().startswith("facade, version ")


@pytest.mark.parametrize("args", [["serve", "--transport", "carrier-pigeon"], ["nope"]],
                         ids=["bad-transport", "bad-command"])
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, _, err = run(*args)
    assert code == 2 and "Traceback" not in err


def test_check_on_a_fresh_starter_says_no_tool_is_chosen(tmp_path: Path) -> None:
    out = tmp_path / "curation.yaml"
    assert run("init", "--spec", str(ROOT / "specs" / "inventory.yaml"), "-o", str(out))[0] == 0
    code, stdout, err = run("check", "--config", str(out))
    assert (code, stdout) == (1, "")
    assert err.splitlines() == [
        f"{out}:13:7: tools: no tool is chosen yet (uncomment a few tools under `tools:`: "
        "remove the `# ` before a tool's name and its `operation:` line, or add one, e.g. "
        "`get_item: {operation: getItem}`)",
        "1 problem(s) found."]


def test_the_starter_keeps_the_base_path_of_the_spec_server(tmp_path: Path,
                                                            backend_url: str) -> None:
    """specs/inventory.yaml's server is …/v1: the starter's default base URL ends in /v1,
    so an uncommented tool reaches the bundled backend (which serves under /v1)."""
    out = tmp_path / "curation.yaml"
    assert run("init", "--spec", str(ROOT / "specs" / "inventory.yaml"), "-o", str(out))[0] == 0
    text = out.read_text()
    assert "  base_url: ${BACKEND_URL:-http://127.0.0.1:8080/v1}\n" in text
    origin = backend_url.removesuffix("/v1").removeprefix("http://")
    text = text.replace("127.0.0.1:8080", origin).replace(
        '  # get_category:\n  #   operation: "getCategory"\n',
        '  get_category:\n    operation: "getCategory"\n')
    out.write_text(text)
    code, stdout, err = run("call", "get_category", "--args", '{"categoryId": 3}',
                            "--config", str(out), env={"FACADE_ARTIFACT": "off"})
    assert code == 0, err
    assert json.loads(stdout)["name"] == "Drills"


@pytest.mark.parametrize(("servers", "default"), [
    ([{"url": "https://api.example.com/v1"}], "http://127.0.0.1:8080/v1"),
    ([{"url": "https://api.example.com/api/v2/"}], "http://127.0.0.1:8080/api/v2"),
    ([{"url": "/v3"}], "http://127.0.0.1:8080/v3"),
    ([{"url": "https://{region}.example.com/{base}", "variables": {
        "region": {"default": "eu"}, "base": {"default": "rest/v1"}}}],
     "http://127.0.0.1:8080/rest/v1"),
    ([{"url": "https://api.example.com"}], "http://127.0.0.1:8080"),
    ([], "http://127.0.0.1:8080"),
], ids=["absolute", "trailing-slash", "relative", "variables", "no-path", "no-server"])
def test_the_starter_base_url_follows_the_first_server(tmp_path: Path,
                                                       servers: list[object],
                                                       default: str) -> None:
    from facade.curate.scaffold import starter_curation

    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps({"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
                                "servers": servers, "paths": {}}))
    text = starter_curation(spec, tmp_path / "curation.yaml")
    assert f"  base_url: ${{BACKEND_URL:-{default}}}\n" in text
