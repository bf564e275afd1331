"""The README documents every curation key and every CLI command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from facade.cli import main
from facade.loading.curation import Curation, MultiCuration, curation_json_schema

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        name = field.alias or name  # the key as written (`validate`, the field `validate_`)
        keys.append(prefix + name)
        for candidate in _models_in(field.annotation):
            keys += _keys(candidate, prefix + name + ".")
    return keys


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found += _models_in(arg)
    return found


def test_every_curation_key_is_in_the_readme() -> None:
    keys = _keys(Curation) + _keys(MultiCuration)
    missing = [k for k in keys if k.rsplit(".", 1)[-1] not in README]
    assert not missing, missing


def test_every_command_is_in_the_readme() -> None:
    assert main.commands
    for name in main.commands:
        assert f"facade {name}" in README, name


def test_committed_json_schema_is_current() -> None:
    """schema/curation.schema.json is generated; regenerate it when the models change:
    python -m facade schema > schema/curation.schema.json
    """
    import json

    path = Path(__file__).resolve().parent.parent / "schema" / "curation.schema.json"
    assert json.loads(path.read_text()) == curation_json_schema()


def test_the_readme_shows_the_current_tools_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `facade tools` example in the README is the command's real output."""
    for name, value in {"INVENTORY_URL": "http://127.0.0.1:9/v1", "INVENTORY_TOKEN": "x",
                        "FACADE_ARTIFACT": "off"}.items():
        monkeypatch.setenv(name, value)
    root = Path(__file__).resolve().parent.parent
    result = CliRunner().invoke(main, ["tools", "--config", str(root / "curation.yaml")])
    assert result.exit_code == 0, result.output
    assert "```text\n" + result.stdout + "```" in README
