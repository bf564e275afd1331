"""The folder tree shows the architecture, and the import-linter contracts hold it there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "facade"
README = (ROOT / "README.md").read_text()
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) \
    or shutil.which("lint-imports")


def _layout_section() -> str:
    start = README.index("## How the code is laid out")
    return README[start:README.index("\n## ", start + 1)]


def test_the_readme_names_every_stage_and_no_other() -> None:
    named = set(re.findall(r"^facade/(\w+)/", _layout_section(), re.MULTILINE))
    stages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert named == stages


def test_no_module_is_over_400_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert {name: lines for name, lines in sizes.items() if lines > 400} == {}


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS is not None, "import-linter is a dev dependency: pip install -e .[dev]"
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Contracts: (\d+) kept, 0 broken", result.stdout)


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("call/encoding.py", "import facade.loading.spec", "Call time reads only"),
    ("loading/flatten.py", "import httpx", "Load time and the frozen definitions"),
    ("tools.py", "import opentelemetry.trace", "Load time and the frozen definitions"),
    ("serve/metrics.py", "import facade.cli", "Nothing imports the entry points"),
    ("loading/refs.py", "import facade.loading.spec", "No import cycles"),
], ids=["call-imports-loading", "loading-imports-httpx", "tools-import-opentelemetry",
        "serve-imports-cli", "a-cycle"])
def test_a_violation_breaks_its_contract(tmp_path: Path, module: str, line: str,
                                         contract: str) -> None:
    """Each contract can fail: one forbidden import, added to a copy, breaks it."""
    shutil.copytree(PACKAGE, tmp_path / "facade",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "facade" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    broken = [block for block in result.stdout.split("\n\n") if "BROKEN" in block]
    assert any(contract in " ".join(b.split()) for b in broken), result.stdout
