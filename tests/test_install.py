"""`facade install`: merge a server entry into each host's config file, by env var name only."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import facade
from facade.cli import main
from facade.curate.install import HOSTS

ROOT = Path(__file__).resolve().parent.parent
CURATION = str(ROOT / "curation.yaml")
SECRET = "s3cr3t-value-that-must-never-be-written"
OTHER = {"command": "npx", "args": ["-y", "some-other-server"], "env": {"KEEP": "me"}}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    # The token is set in the environment: no output and no file may ever contain it.
    result = CliRunner().invoke(main, list(args), env={"INVENTORY_TOKEN": SECRET, **(env or {})})
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert SECRET not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def install(host: str, path: Path, *extra: str) -> tuple[int, str, str]:
    return run("install", host, "--config", CURATION, "--config-file", str(path), *extra)


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".*.bak"))


def expected_args() -> list[str]:
    return ["-m", "facade", "serve", "--config", CURATION]


@pytest.mark.parametrize(("host", "servers_key", "env"), [
    ("claude-desktop", "mcpServers", None),
    ("cursor", "mcpServers", {"INVENTORY_URL": "${env:INVENTORY_URL}",
                              "INVENTORY_TOKEN": "${env:INVENTORY_TOKEN}"}),
    ("vscode", "servers", {"INVENTORY_URL": "${env:INVENTORY_URL}",
                           "INVENTORY_TOKEN": "${input:inventory-token}"}),
    ("claude-code", "mcpServers", {"INVENTORY_URL": "${INVENTORY_URL:-}",
                                   "INVENTORY_TOKEN": "${INVENTORY_TOKEN:-}"}),
], ids=["claude-desktop", "cursor", "vscode", "claude-code"])
def test_writes_the_host_entry_keeping_other_entries(
        tmp_path: Path, host: str, servers_key: str, env: dict[str, str] | None) -> None:
    path = tmp_path / "config.json"
    original = {servers_key: {"other": OTHER}, "unrelated": {"theme": "dark"}}
    path.write_text(json.dumps(original))
    code, out, err = install(host, path)
    assert code == 0, err
    assert out == ""
    data = json.loads(path.read_text())
    assert data["unrelated"] == {"theme": "dark"}
    assert data[servers_key]["other"] == OTHER
    entry = data[servers_key]["inventory"]
    assert entry["command"] == os.path.abspath(sys.executable)
    assert entry["args"] == expected_args()
    assert entry.get("env") == env
    assert ("type" in entry) == (host != "claude-desktop")
    assert SECRET not in path.read_text()
    # The backup is the file as it was.
    [backup] = backups(path)
    assert json.loads(backup.read_text()) == original
    assert f"added 'inventory' (backup: {backup.name})" in err


def test_vscode_declares_a_password_input_for_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    mine = {"type": "promptString", "id": "github-pat", "password": True, "description": "PAT"}
    path.write_text(json.dumps({"inputs": [mine], "servers": {}}))
    assert install("vscode", path)[0] == 0
    data = json.loads(path.read_text())
    assert data["inputs"] == [mine, {
        "type": "promptString", "id": "inventory-token", "password": True,
        "description": "INVENTORY_TOKEN: Bearer token for the backend API."}]
    # Another server using the same variable shares the input instead of duplicating it.
    code, _, err = install("vscode", path, "--name", "inventory-2")
    assert code == 0, err
    data = json.loads(path.read_text())
    assert [i["id"] for i in data["inputs"]] == ["github-pat", "inventory-token"]
    assert set(data["servers"]) == {"inventory", "inventory-2"}


@pytest.mark.parametrize("host", ["claude-desktop", "cursor", "vscode", "claude-code"])
def test_the_uvx_runner_runs_the_published_package_pinned_to_this_version(
        tmp_path: Path, host: str) -> None:
    path = tmp_path / "config.json"
    code, _, err = install(host, path, "--runner", "uvx")
    assert code == 0, err
    [entry] = json.loads(path.read_text())[HOSTS[host].servers_key].values()
    assert entry["command"] == "uvx"
    assert entry["args"] == ["--from", f"facade-mcp=={facade.__version__}", "facade", "serve",
                             "--config", CURATION]
    assert SECRET not in path.read_text()


def test_claude_desktop_gets_no_env_and_the_user_is_told_which_names(tmp_path: Path) -> None:
    code, _, err = install("claude-desktop", tmp_path / "claude_desktop_config.json")
    assert code == 0
    assert "never writes their values" in err
    assert "INVENTORY_URL (optional), INVENTORY_TOKEN (secret)" in err


def test_malformed_file_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    text = '{\n  "mcpServers": {\n    "other": {"command": "npx",}\n  }\n}\n'
    path.write_text(text)
    before = path.stat()
    code, out, err = install("cursor", path)
    assert code == 1 and out == ""
    assert err.startswith(f"{path}:3:32: not valid JSON (Expecting property name enclosed in "
                          "double quotes); nothing was written.")
    assert "Traceback" not in err
    assert path.read_text() == text and path.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mcp.json"]  # no backup, no temp


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "the top level is not a JSON object"),
    ('{"mcpServers": []}', "'mcpServers' is not a JSON object"),
], ids=["top-level-array", "servers-not-object"])
def test_wrong_shape_is_left_untouched(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(text)
    code, _, err = install("cursor", path)
    assert code == 1 and message in err
    assert path.read_text() == text and not backups(path)


def test_an_existing_name_is_refused_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / ".mcp.json"
    path.write_text(json.dumps({"mcpServers": {"inventory": OTHER}}))
    code, _, err = install("claude-code", path)
    assert code == 1
    assert "a server named 'inventory' is already there; pass --force" in err
    assert json.loads(path.read_text())["mcpServers"]["inventory"] == OTHER
    assert not backups(path)

    code, _, err = install("claude-code", path, "--force")
    assert code == 0 and "replaced 'inventory'" in err
    assert json.loads(path.read_text())["mcpServers"]["inventory"]["args"] == expected_args()
    assert json.loads(backups(path)[0].read_text())["mcpServers"]["inventory"] == OTHER


def test_running_it_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    assert install("cursor", path)[0] == 0
    assert not backups(path)  # there was nothing to back up
    text = path.read_text()
    code, _, err = install("cursor", path)
    assert code == 0 and "already there, unchanged" in err
    assert path.read_text() == text and not backups(path)


def test_dry_run_prints_the_entry_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "mcp.json"
    code, out, err = install("vscode", path, "--dry-run", "--name", "inv")
    assert code == 0
    shown = json.loads(out)
    assert list(shown) == ["servers", "inputs"]
    assert shown["servers"]["inv"]["args"] == expected_args()
    assert f"would merge this into {path}" in err
    assert not path.parent.exists()


def test_file_mode_and_symlinks_are_kept(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "mcp.json"
    real.parent.mkdir()
    real.write_text("{}")
    real.chmod(0o600)
    link = tmp_path / "mcp.json"
    link.symlink_to(real)
    assert install("cursor", link)[0] == 0
    assert link.is_symlink()
    assert "inventory" in json.loads(real.read_text())["mcpServers"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_a_broken_curation_writes_nothing(write_curation: Callable[[str], Path],
                                          tmp_path: Path) -> None:
    curation = write_curation("version: 1\nspec: specs/inventory.yaml\nbackend: {base_url: "
                              "'http://127.0.0.1:9'}\ntools:\n  a:\n    operation: getItm\n")
    path = tmp_path / "mcp.json"
    code, _, err = run("install", "cursor", "--config", str(curation), "--config-file", str(path))
    assert code == 1 and "unknown operation 'getItm'" in err
    assert not path.exists()


def test_variables_the_shell_lacks_are_still_passed_by_name(
        write_curation: Callable[[str], Path], tmp_path: Path) -> None:
    curation = write_curation("""
        version: 1
        spec: specs/inventory.yaml
        backend:
          base_url: ${API_URL}/v1
          headers: {X-Api-Key: "${API_KEY}", X-Tenant: "${TENANT:-acme}"}
          auth: {basic_user_env: API_USER, basic_password_env: API_PASSWORD}
        tools:
          get_item: {operation: getItem}
        """)
    path = tmp_path / "mcp.json"
    code, _, err = run("install", "cursor", "--config", str(curation), "--config-file", str(path))
    assert code == 0, err
    env = json.loads(path.read_text())["mcpServers"]["inventory-api"]["env"]
    assert env == {n: f"${{env:{n}}}" for n in
                   ["API_URL", "API_KEY", "TENANT", "API_USER", "API_PASSWORD"]}


def test_default_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    paths: dict[str, Any] = {k: h.default_path() for k, h in HOSTS.items()}
    assert paths["cursor"] == tmp_path / "home" / ".cursor" / "mcp.json"
    assert paths["vscode"] == tmp_path / ".vscode" / "mcp.json"
    assert paths["claude-code"] == tmp_path / ".mcp.json"
    assert paths["claude-desktop"] == tmp_path / "xdg" / "Claude" / "claude_desktop_config.json"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert HOSTS["claude-desktop"].default_path() == (
        tmp_path / "home" / "Library" / "Application Support" / "Claude"
        / "claude_desktop_config.json")
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "appdata"))
    assert HOSTS["claude-desktop"].default_path() == (
        tmp_path / "appdata" / "Claude" / "claude_desktop_config.json")
    # Without --config-file the project-scoped hosts write in the current directory.
    code, _, err = run("install", "claude-code", "--config", CURATION)
    assert code == 0, err
    assert "inventory" in json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]


@pytest.mark.parametrize("args", [["install", "zed"], ["install", "cursor", "--name", "a b"]],
                         ids=["unknown-host", "bad-name"])
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, _, err = run(*args, "--config", CURATION, "--dry-run")
    assert code == 2 and "Traceback" not in err


def test_every_write_keeps_its_own_backup(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"inventory": OTHER}}))
    for _ in range(3):  # within one second: the backups must not overwrite each other
        assert install("cursor", path, "--force", "--name", f"n{len(backups(path))}")[0] == 0
    assert len(backups(path)) == 3
    assert json.loads(backups(path)[-1].read_text())["mcpServers"]["inventory"] == OTHER
