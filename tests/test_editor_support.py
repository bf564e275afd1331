"""Editor completion: the `yaml-language-server` comment points at a current JSON Schema."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from facade.cli import main, schema_text

ROOT = Path(__file__).resolve().parent.parent
COMMENT = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


def schema_of(curation: Path) -> Path:
    """The file the first line's `$schema` names, resolved as the language server does."""
    match = COMMENT.match(curation.read_text().splitlines()[0])
    assert match, "the first line is not a yaml-language-server comment"
    return (curation.parent / match.group(1)).resolve()


def test_facade_schema_prints_the_committed_schema() -> None:
    code, out, _ = run("schema")
    assert code == 0
    assert out == schema_text() == (ROOT / "schema" / "curation.schema.json").read_text()


def test_the_bundled_example_points_at_the_committed_schema() -> None:
    assert schema_of(ROOT / "curation.yaml") == ROOT / "schema" / "curation.schema.json"


def test_init_writes_the_schema_its_comment_points_at(tmp_path: Path) -> None:
    out = tmp_path / "api" / "curation.yaml"
    out.parent.mkdir()
    code, _, err = run("init", "--spec", str(ROOT / "specs" / "inventory.yaml"), "-o", str(out))
    assert code == 0, err
    target = schema_of(out)
    assert target == (tmp_path / "api" / "schema" / "curation.schema.json").resolve()
    assert target.read_text() == schema_text()
    assert f"wrote {out.parent / 'schema' / 'curation.schema.json'}" in err


def test_init_keeps_a_different_schema_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "curation.yaml"
    schema = tmp_path / "schema" / "curation.schema.json"
    schema.parent.mkdir()
    schema.write_text("{}")
    spec = str(ROOT / "specs" / "inventory.yaml")
    code, _, err = run("init", "--spec", spec, "-o", str(out))
    assert code == 0 and schema.read_text() == "{}"
    assert f"kept {schema}, which is not this facade's schema; `facade schema -o {schema}` " \
        "replaces it" in err
    code, _, err = run("init", "--spec", spec, "-o", str(out), "--force")
    assert code == 0 and schema.read_text() == schema_text()


def test_schema_output_option(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "curation.schema.json"
    code, out, err = run("schema", "-o", str(target))
    assert code == 0 and out == "" and err == f"wrote {target}\n"
    assert target.read_text() == schema_text()
