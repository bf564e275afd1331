"""`facade build` artifacts: same tools as a fresh load, never stale, never a secret."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from facade.cli import main, tool_listing
from facade.loading.artifact import artifact_path, build, load_artifact, load_fast
from facade.loading.loader import load

ROOT = Path(__file__).resolve().parent.parent
ENV = {"INVENTORY_URL": "http://127.0.0.1:9/v1", "INVENTORY_TOKEN": "t"}


@pytest.fixture
def config(write_curation: Callable[[str], Path]) -> Path:
    """The bundled curation beside a copy of its multi-file spec (three files)."""
    return write_curation((ROOT / "curation.yaml").read_text())


def test_tools_list_from_the_artifact_is_the_fresh_one(config: Path, tmp_path: Path) -> None:
    result = build(config, tmp_path / "out.json", environ=ENV)
    assert result.files == 4  # the curation, inventory.yaml and its two components files
    facade, why = load_fast(config, artifact=result.path, environ=ENV)
    fresh = load(config, environ=ENV)
    assert why is None
    assert facade == fresh
    assert tool_listing(facade) == tool_listing(fresh)


def test_the_default_place_is_beside_the_curation(config: Path) -> None:
    assert artifact_path(config, {}) == config.with_name("curation.artifact.json")
    assert artifact_path(config, {"FACADE_ARTIFACT": "/x/y.json"}) == Path("/x/y.json")
    assert artifact_path(config, {"FACADE_ARTIFACT": "off"}) is None


@pytest.mark.parametrize(("changed", "reason"), [
    ("curation.yaml", "curation.yaml changed since it was built"),
    ("specs/inventory.yaml", "spec file specs/inventory.yaml changed since it was built"),
    ("specs/components/schemas.yaml",
     "spec file specs/components/schemas.yaml changed since it was built"),
], ids=["curation", "root spec", "referenced spec file"])
def test_a_stale_artifact_falls_back_to_a_load(config: Path, tmp_path: Path, changed: str,
                                              reason: str) -> None:
    path = build(config, tmp_path / "out.json", environ=ENV).path
    with open(config.parent / changed, "a") as out:
        out.write("\n# edited\n")
    facade, why = load_fast(config, artifact=path, environ=ENV)
    assert why == (f"facade: not using {path}: {reason}; loading the spec (run "
                   "`facade build` to refresh it)")
    assert facade == load(config, environ=ENV)


def test_a_missing_spec_file_makes_it_stale(config: Path, tmp_path: Path) -> None:
    path = build(config, tmp_path / "out.json", environ=ENV).path
    data = json.loads(path.read_text())
    data["spec"][-1]["path"] = "specs/gone.yaml"
    path.write_text(json.dumps(data))
    with pytest.raises(Exception, match=r"^spec file specs/gone\.yaml is gone$"):
        load_artifact(config, path)


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda text: text[: len(text) // 2], "it is not valid JSON"),
    (lambda text: "\x00\xff garbage", "it is not valid JSON"),
    (lambda text: "[1, 2]", "it is not a facade artifact"),
    (lambda text: text.replace('"get_item"', '"get_itme"'),
     "its content does not match its digest (edited or damaged)"),
], ids=["truncated", "garbage", "other JSON", "edited"])
def test_a_corrupted_artifact_is_a_clear_line_not_a_traceback(
        config: Path, tmp_path: Path, damage: Callable[[str], str], reason: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = build(config, tmp_path / "out.json", environ=ENV).path
    path.write_text(damage(path.read_text()))
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FACADE_ARTIFACT", str(path))
    result = CliRunner().invoke(main, ["tools", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    lines = [line for line in result.stderr.splitlines() if line.startswith("facade:")]
    assert len(lines) == 1 and reason in lines[0], result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert json.loads(result.stdout)["tools"]


def test_no_environment_value_is_stored(write_curation: Callable[[str], Path],
                                        tmp_path: Path) -> None:
    secrets = {"BACKEND": "http://127.0.0.1:9/base-from-env", "TENANT": "tenant-from-env",
               "INVENTORY_TOKEN": "token-from-env"}
    config = write_curation("""
        version: 1
        spec: specs/inventory.yaml
        backend:
          base_url: ${BACKEND}
          headers: {X-Tenant: "${TENANT}"}
          auth: {bearer_env: INVENTORY_TOKEN}
        tools:
          get_item: {operation: getItem, params: {X-Tenant: {value: acme}}}
        """)
    path = build(config, tmp_path / "out.json", environ=secrets).path
    text = path.read_text()
    for value in secrets.values():
        assert value not in text
    # They are expanded again at each start, from that start's environment.
    other = {"BACKEND": "http://127.0.0.1:9/elsewhere", "TENANT": "t2"}
    facade, why = load_fast(config, artifact=path, environ=other)
    assert why is None
    assert facade.backend.base_url == "http://127.0.0.1:9/elsewhere"
    assert facade.backend.headers == {"X-Tenant": "t2"}


def test_the_build_command(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FACADE_ARTIFACT", raising=False)
    result = CliRunner().invoke(main, ["build", "--config", str(config)])
    assert result.exit_code == 0, result.output
    target = config.with_name("curation.artifact.json")
    assert result.stdout == (f"{target}: 4 tool(s), {target.stat().st_size:,} bytes, keyed by "
                             "4 file digest(s)\n")
    facade, why = load_fast(config, artifact=target, environ=ENV)
    assert why is None and len(facade.tools) == 4
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_build_reports_load_problems_like_check(write_curation: Callable[[str], Path]
                                                ) -> None:
    config = write_curation("""
        version: 1
        spec: specs/inventory.yaml
        backend: {base_url: "http://127.0.0.1:9"}
        tools:
          get_item: {operation: getItm}
        """)
    result = CliRunner().invoke(main, ["build", "--config", str(config), "-o",
                                       str(config.with_name("a.json"))])
    assert result.exit_code == 1
    assert "tools.get_item.operation: unknown operation 'getItm'" in result.stderr
    assert not config.with_name("a.json").exists()


@pytest.mark.parametrize("module", ["tools.py", "shaping.py", "call/tool.py",
                                    "loading/schemas.py"])
def test_the_code_digest_covers_every_stage(tmp_path: Path, module: str) -> None:
    """An artifact is keyed by all of facade's code, not only by the loading package's:
    the frozen definitions and the call path decide what a stored tool means too."""
    package = Path(__file__).resolve().parent.parent / "facade"
    shutil.copytree(package, tmp_path / "facade", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from facade.loading.artifact import _code_digest; print(_code_digest())"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def digest() -> str:
        return subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()

    before = digest()
    target = tmp_path / "facade" / module
    target.write_text(target.read_text() + "\n# a change\n")
    assert digest() != before
