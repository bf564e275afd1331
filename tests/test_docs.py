"""The README documents every curation key and every CLI command."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from facade.cli import main
from facade.loading.curation import Curation, MultiCuration, curation_json_schema

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the curation, as the README's reference spells it: a mapping of
    user-chosen names is `<name>` (`<p>` for parameters, `<api>` for APIs)."""
    keys = []
    for name, field in model.model_fields.items():
        name = field.alias or name  # the key as written (`validate`, the field `validate_`)
        keys.append(prefix + name)
        placeholder = {"params": "<p>", "apis": "<api>"}.get(name, "<name>")
        inner = f"{prefix}{name}.{placeholder}." if _is_mapping(field.annotation) else \
            f"{prefix}{name}."
        for candidate in _models_in(field.annotation):
            keys += _keys(candidate, inner)
    return keys


def _is_mapping(annotation: object) -> bool:
    return getattr(annotation, "__origin__", None) is dict or any(
        _is_mapping(arg) for arg in getattr(annotation, "__args__", ()))


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found += _models_in(arg)
    return found


def _reference() -> dict[str, str]:
    """The README's reference tables: each key in a row's first cell → the row's text."""
    rows: dict[str, str] = {}
    for line in README.splitlines():
        cells = line.split(" | ")
        if line.startswith("| `") and len(cells) >= 2:
            for key in re.findall(r"`([^`]+)`", cells[0]):
                rows[key] = cells[1]
    return rows


# Keys documented once for several places: a multi-API curation's `apis.<api>.X` means the
# top level's `X`; a resource's params, response, … mean what they mean for tools.
ALIASES = [("apis.<api>.", "", "apis.<api>"), ("resources.<name>.", "tools.<name>.",
                                               "resources.<name>.*")]


def _documented(key: str, rows: dict[str, str]) -> bool:
    """`key` has a row of its own, or rows below it, or the row of the key just above it
    names it in backticks."""
    if key in rows or any(row.startswith(key + ".") for row in rows):  # a key or a section
        return True
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        above = ".".join(parts[:i])
        if above in rows and f"`{parts[-1]}`" in rows[above] and i == len(parts) - 1:
            return True
    for prefix, replacement, row in ALIASES:
        if key.startswith(prefix) and row in rows:
            rest = key.removeprefix(prefix)
            if f"`{rest.split('.')[0]}`" in rows[row] and _documented(replacement + rest, rows):
                return True
    return False


def test_every_curation_key_is_in_the_readme_reference() -> None:
    rows = _reference()
    keys = _keys(Curation) + _keys(MultiCuration)
    assert "tools.<name>.params.<p>.rename" in keys and "server.auth.jwt.issuer" in keys
    missing = [k for k in keys if not _documented(k, rows)]
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


def _block_after(intro: str) -> str:
    """The body of the first fenced block after `intro` in the README."""
    start = README.index(intro)
    body = README.index("\n", README.index("```", start)) + 1
    return README[body:README.index("```", body)]


@pytest.fixture
def in_project(write_curation: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
               ) -> Callable[[str], Path]:
    """A curation.yaml beside a copy of specs/, run from its folder as the README does."""
    def write(text: str) -> Path:
        path = write_curation(text)
        monkeypatch.chdir(path.parent)
        return path

    monkeypatch.setenv("FACADE_ARTIFACT", "off")
    return write


MISTAKES = """
    version: 1
    spec: specs/inventory.yaml
    backend: {base_url: "http://127.0.0.1:8080/v1"}
    tools:
      get_item:
        operation: getItm
      get_stock:
        operation: getItemStock
        params:
          itemID: {rename: sku}
      delete_item:
        operation: deleteItem
      get_category:
        operation: getCategory
        response:
          include: [nmae]
      list_items:
        operation: listItems
        params:
          limit: {value: twenty}
"""

LINT = """
    version: 1
    spec: specs/inventory.yaml
    backend: {base_url: "http://127.0.0.1:8080/v1"}
    tools:
      get_item:
        operation: getItem
        description: Fetch one inventory item; X-Tenant is always acme.
        params:
          itemId: {rename: sku, description: "Pass the itemId, e.g. SKU-1042"}
          X-Tenant: {value: acme}
          expand: {value: supplier}
      delete_item_cache:
        operation: getItemStock
        description: Units on hand per warehouse for one SKU.
        params: {itemId: {rename: sku}, X-Tenant: {value: acme}}
      stock__report_:
        operation: exportStockReport
        description: Stock of every item, as CSV.
"""


def test_the_readme_shows_the_real_mistakes_output(in_project: Callable[[str], Path]) -> None:
    in_project(MISTAKES)
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1
    assert result.stderr == _block_after("`facade check` on a curation with mistakes:")


def test_the_readme_shows_the_real_lint_output(in_project: Callable[[str], Path]) -> None:
    in_project(LINT)
    result = CliRunner().invoke(main, ["check", "--strict"])
    assert result.exit_code == 1
    assert result.stderr == _block_after("`facade check --strict` on a curation with such")


def test_the_readme_shows_the_real_budget_table(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    for name, value in {"INVENTORY_URL": "http://127.0.0.1:9/v1", "INVENTORY_TOKEN": "x",
                        "FACADE_ARTIFACT": "off"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["tools", "--budget"])
    assert result.exit_code == 0, result.output

    def timeless(text: str) -> str:  # how long the uncurated build took varies
        return re.sub(r"took \d+\.\d s\)", "took N s)", text)

    shown = _block_after("weigh with every operation exposed as a tool:")
    assert timeless(result.stdout) == timeless(shown)
    over = CliRunner().invoke(main, ["check", "--max-tokens", "500"])
    assert over.exit_code == 1
    assert over.stderr == _block_after("tokens, and names the largest tools:")


def test_the_readme_shows_the_real_init_and_check_output(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """"Your own API in five minutes": init's lines, then check's once two tools are
    uncommented, as the console block shows them."""
    shutil.copytree(Path(__file__).resolve().parent.parent / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    block = _block_after("## Your own API in five minutes").splitlines()
    init_lines = block[1:block.index(next(b for b in block if b.startswith("$ $EDITOR")))]
    result = CliRunner().invoke(main, ["init", "--spec", "specs/inventory.yaml"])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == init_lines
    text = Path("curation.yaml").read_text()
    for name, operation in [("list_items", "listItems"), ("get_item", "getItem")]:
        text = text.replace(f'  # {name}:\n  #   operation: "{operation}"\n',
                            f'  {name}:\n    operation: "{operation}"\n')
    Path("curation.yaml").write_text(text)
    checked = CliRunner().invoke(main, ["check"])
    assert checked.exit_code == 0, checked.output
    check_line = block[block.index("$ facade check") + 1]
    assert checked.stdout.splitlines() == [check_line]
