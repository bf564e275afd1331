"""Shared fixtures: the bundled example's backend on 127.0.0.1, and curation writers."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import inventory_backend  # noqa: E402

TOKEN = "test-token"  # tests/e2e/conftest.py spells the same value for child processes


@pytest.fixture(scope="session")
def backend_url() -> Iterator[str]:
    """The example inventory backend, listening on an ephemeral 127.0.0.1 port."""
    server, url = inventory_backend.start(0)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def faulty_url() -> Iterator[str]:
    """The misbehaving backend of tests/faulty_backend.py, on an ephemeral 127.0.0.1 port."""
    import faulty_backend

    server, url = faulty_backend.start()
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def example_env(backend_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for the bundled curation: backend URL and token."""
    monkeypatch.setenv("INVENTORY_URL", backend_url)
    monkeypatch.setenv("INVENTORY_TOKEN", TOKEN)
    return {"INVENTORY_URL": backend_url, "INVENTORY_TOKEN": TOKEN}


@pytest.fixture
def write_curation(tmp_path: Path) -> Callable[[str], Path]:
    """Write a curation.yaml (dedented) next to a copy of the example spec."""
    specs = tmp_path / "specs"
    (specs / "components").mkdir(parents=True)
    for f in ["inventory.yaml", "components/parameters.yaml", "components/schemas.yaml"]:
        (specs / f).write_text((ROOT / "specs" / f).read_text())

    def write(text: str, name: str = "curation.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture(scope="session")
def deviating_url() -> Iterator[str]:
    """tests/deviating_backend.py: answers that deviate from their spec, on 127.0.0.1."""
    import deviating_backend

    server, url = deviating_backend.start()
    yield url
    server.shutdown()
    server.server_close()
