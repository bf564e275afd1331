"""Shared fixtures: the bundled example's backend on 127.0.0.1, curation writers, and the
real-world specs corpus.

The corpus (Stripe, GitHub, Twilio, DigitalOcean and smaller documents; see its MANIFEST.md)
is not part of the repository: CI lays it beside the clone as `../shared/specs-corpus`.
Tests that need it carry `@pytest.mark.corpus` and are skipped, with one reason, where it is
absent; `FACADE_REQUIRE_CORPUS=1` (set by `.ci/run`) turns that skip into a failure, so CI
never loses them. The few small documents the other tests need are copied into
`tests/data/specs-corpus/` (same layout; see its NOTICE.md).
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import inventory_backend  # noqa: E402

from facade.call.scrub import secrets_scope  # noqa: E402

TOKEN = "test-token"  # tests/e2e/conftest.py spells the same value for child processes

# The whole corpus, a sibling of the checkout (as in CI), and the small part copied here.
SPECS_CORPUS = ROOT.parent / "shared" / "specs-corpus"
VENDORED_SPECS = ROOT / "tests" / "data" / "specs-corpus"
CORPUS_MISSING = (f"needs the real-world specs corpus, which is not beside this clone "
                  f"({SPECS_CORPUS} does not exist; CI provides it)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, with FACADE_REQUIRE_CORPUS=1, fail) a `corpus` test without the corpus."""
    if item.get_closest_marker("corpus") is None or SPECS_CORPUS.is_dir():
        return
    if os.environ.get("FACADE_REQUIRE_CORPUS") == "1":
        pytest.fail(f"FACADE_REQUIRE_CORPUS=1, but this test {CORPUS_MISSING}", pytrace=False)
    pytest.skip(CORPUS_MISSING)


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    """No test sees what another left behind: the test backends' request records start
    empty, and secrets registered for scrubbing during a test are forgotten after it (so a
    test that expects a credential masked must have registered it itself)."""
    import faulty_backend

    inventory_backend.Handler.seen.clear()
    faulty_backend.FaultyHandler.seen.clear()
    faulty_backend.FaultyHandler.hits.clear()
    with secrets_scope():
        yield


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
