"""Packaging: one version, a distribution name of its own, one command (also under the
distribution's name), PyPI metadata and a licence, a Keep a Changelog file, a build step in CI.

The wheel and sdist are built in `.ci/run` (building here would need the network for the
isolated build environment).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import facade

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_lives_only_in_the_package() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "facade/version.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[.-]?(?:a|b|rc|dev)\d+)?", facade.__version__)


def test_the_distribution_has_a_name_of_its_own() -> None:
    """`facade` on PyPI is an unrelated project: facade is published as `facade-mcp`, and
    `facade` stays the import package and the command."""
    from facade.version import DISTRIBUTION

    assert PYPROJECT["project"]["name"] == DISTRIBUTION == "facade-mcp"
    assert PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["facade"]
    assert PYPROJECT["project"]["optional-dependencies"]["dev"][0].startswith(DISTRIBUTION + "[")


def test_pypi_metadata_and_the_licence() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"  # .ci/run checks LICENSE is in the wheel and sdist
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License\n") and "WITHOUT WARRANTY OF ANY KIND" in licence
    assert project["readme"] == {"file": "README.md", "content-type": "text/markdown"}
    assert {"mcp", "openapi"} <= set(project["keywords"])
    classifiers = project["classifiers"]
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: `license`
    assert project["urls"] and all(u.startswith("https://") for u in project["urls"].values())


def test_one_entry_point_and_python_dash_m_agree() -> None:
    # `facade-mcp` is the same command, for `uvx facade-mcp …` (the registry's server.json).
    assert PYPROJECT["project"]["scripts"] == {"facade": "facade.cli:main",
                                               "facade-mcp": "facade.cli:main"}
    result = subprocess.run([sys.executable, "-m", "facade", "--version"], capture_output=True,
                            text=True, check=True, cwd=ROOT)
    assert result.stdout == f"facade, version {facade.__version__}\n"
    usage = subprocess.run([sys.executable, "-m", "facade", "--help"], capture_output=True,
                           text=True, check=True, cwd=ROOT)
    assert usage.stdout.startswith("Usage: facade ")


def test_imported_libraries_are_declared() -> None:
    declared = {re.split(r"[<>=\[ ]", d)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    assert {"rich", "click", "httpx", "jsonschema", "pyyaml", "fastmcp"} <= declared
    assert any(d.startswith("build") for d in PYPROJECT["project"]["optional-dependencies"]["dev"])


def test_changelog_follows_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "https://keepachangelog.com/en/1.1.0/" in text
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    assert releases[0] == ("Unreleased", "")
    assert (facade.__version__, releases[1][1]) == releases[1] and releases[1][1]
    kinds = set(re.findall(r"^### (.+)$", text, re.MULTILINE))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_ci_builds_and_smoke_tests_the_wheel() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m build" in ci
    assert "facade_mcp-*.whl" in ci and "--version" in ci
    assert "twine check --strict" in ci and "LICENSE" in ci
