"""The image: its Dockerfile's promises and its lock always; the built image where a
container engine runs.

The image tests build the image with Docker, or with Podman where no Docker daemon answers
(tests/e2e/container_engine.py: how, and on which base), and are skipped, with the reason,
only when neither engine works on this machine. Everything else here runs everywhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import tomllib
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import inventory_backend
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from facade.version import DISTRIBUTION

from .conftest import (
    ROOT,
    HttpServer,
    assert_no_leaks,
    check_backend_request,
    check_item,
    free_port,
)
from .container_engine import Engine, base_image, find_engine

DOCKERFILE = (ROOT / "Dockerfile").read_text()
LOCK = (ROOT / "requirements.lock").read_text()
TOKEN = "ci-token-0123456789abcdef0123"
OCI_LABELS = ("title", "description", "licenses", "version", "revision", "created",
              "base.name")


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\s*\\\n\s*", " ", DOCKERFILE)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in
            joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    return steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]


def _healthcheck() -> list[str]:
    [healthcheck] = [arg for op, arg in _final_stage() if op == "HEALTHCHECK"]
    command: list[str] = json.loads(healthcheck[healthcheck.index("CMD [") + 4:])
    return command


def test_dockerfile_is_multi_stage_non_root_checked_and_healthchecked() -> None:
    steps = instructions()
    stages = [arg for op, arg in steps if op == "FROM"]
    assert stages == ["${BASE} AS build", "${BASE}"]
    build = steps[:steps.index(("FROM", "${BASE}"))]
    # A virtualenv without pip or setuptools, filled from the lock by the base's pip.
    assert ("RUN", "python -m venv --without-pip /opt/facade") in build
    runs = [arg for op, arg in build if op == "RUN"]
    assert any("--require-hashes --no-deps -r requirements.lock" in run for run in runs)
    assert any("install --no-deps ." in run and " check" in run for run in runs)
    final = _final_stage()
    assert [arg for op, arg in final if op == "COPY" and arg.startswith("--from")] == [
        "--from=build /opt/facade /opt/facade"]
    users = [arg for op, arg in final if op == "USER"]
    assert users == ["10001:10001"]  # numeric, so runAsNonRoot can verify it
    ops = [op for op, _ in final]
    # `facade check` runs as the final user, after the curation and spec are in place.
    check = final.index(("RUN", "facade check"))
    assert ops.index("USER") < check and ops.index("COPY") < check
    assert ("EXPOSE", "8000") in final and ("STOPSIGNAL", "SIGTERM") in final
    assert [arg for op, arg in final if op == "ENTRYPOINT"] == ['["facade"]']
    # The HEALTHCHECK is exec form (python, since slim images have no curl) and follows
    # FACADE_PORT, which is also serve's --port: one setting moves both.
    assert _healthcheck()[:2] == ["python", "-c"] and "FACADE_PORT" in _healthcheck()[2]
    assert "FACADE_PORT=8000" in " ".join(arg for op, arg in final if op == "ENV")


def test_the_base_is_pinned_by_digest_with_oci_labels() -> None:
    [base] = [arg for op, arg in instructions() if op == "ARG" and arg.startswith("BASE=")]
    assert re.fullmatch(r"BASE=python:3\.11-slim@sha256:[0-9a-f]{64}", base), base
    assert "To refresh it" in DOCKERFILE and "imagetools inspect" in DOCKERFILE
    [labels] = [arg for op, arg in _final_stage() if op == "LABEL"]
    for label in OCI_LABELS:
        assert f"org.opencontainers.image.{label}=" in labels, label
    assert 'org.opencontainers.image.base.name="${BASE}"' in labels
    assert ("ARG", "BASE") in _final_stage()  # else the label would be empty


def test_dockerignore_admits_only_what_the_image_copies() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {src.rstrip("/").removeprefix("./") for op, arg in instructions() if op == "COPY"
              and not arg.startswith("--from") for src in arg.split()[:-1]}
    assert admitted == copied


def _locked() -> dict[str, tuple[str, list[str]]]:
    """The lock's pins: name -> (version, sha256 hashes)."""
    pins = {}
    for entry in re.split(r"\n(?=\S)", re.sub(r"(?m)^\s*#.*\n", "", LOCK)):
        if not entry.strip():
            continue
        requirement, *hashes = entry.replace("\\\n", " ").split()
        name, version = requirement.split("==")
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes)
        pins[canonicalize_name(name)] = (version, [h.split(":", 1)[1] for h in hashes])
    return pins


IMAGE_ENVIRONMENT = {**default_environment(), "sys_platform": "linux",
                     "platform_system": "Linux", "python_version": "3.11",
                     "implementation_name": "cpython"}


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    pins = _locked()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert declared
    for line in declared:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is declared in pyproject.toml but not locked"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"the lock's {name}=={pins[name][0]} does not satisfy {requirement}")


def test_the_lock_is_closed_under_dependencies() -> None:
    """What each locked package requires (on Linux, CPython 3.11, as in the image) is
    locked too; `pip install --no-deps` would silently leave it out. The requirements are
    read from the installed distributions: the lock is what this environment runs."""
    pins = _locked()
    other = sorted(f"{name} {metadata.distribution(name).version} (locked {version})"
                   for name, (version, _) in pins.items()
                   if metadata.distribution(name).version != version)
    if other and os.environ.get("CI") != "true":  # CI installs the lock: there it must hold
        pytest.skip(f"this environment does not run the locked versions ({len(other)} differ, "
                    f"e.g. {other[0]}); install requirements.lock to check it (README, "
                    "Development)")
    assert not other, "install from the lock (README, Development): " + ", ".join(other)
    for name in pins:
        installed = metadata.distribution(name)
        for line in installed.requires or []:
            requirement = Requirement(line)
            # The image's Python is its base's 3.11 (Debian 12: 3.11.2), not necessarily
            # this one: what any 3.11 release needs must be locked.
            if requirement.marker is None or any(requirement.marker.evaluate(
                    {**IMAGE_ENVIRONMENT, "python_full_version": f"3.11.{patch}", "extra": ""})
                    for patch in range(16)):
                assert canonicalize_name(requirement.name) in pins, (name, line)


def test_the_healthcheck_follows_facade_port(http_server: HttpServer) -> None:
    """The HEALTHCHECK's own command, run here: healthy on the port FACADE_PORT names, not
    on another, and never through a proxy (an HTTP_PROXY set for the backend)."""
    port = str(urlsplit(http_server.url).port)
    command = [sys.executable, *_healthcheck()[1:]]
    env = {"PATH": os.environ.get("PATH", ""), "HTTP_PROXY": f"http://127.0.0.1:{free_port()}",
           "http_proxy": f"http://127.0.0.1:{free_port()}"}
    ok = subprocess.run(command, env={**env, "FACADE_PORT": port}, capture_output=True,
                        timeout=30)
    assert ok.returncode == 0, ok.stderr
    closed = subprocess.run(command, env={**env, "FACADE_PORT": str(free_port())},
                            capture_output=True, timeout=30)
    assert closed.returncode != 0 and b"Connection refused" in closed.stderr


# --- the built image -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    found = find_engine(tmp_path_factory.mktemp("engine"))
    if isinstance(found, str):
        pytest.skip(f"no container engine on this machine: {found}")
    return found


@pytest.fixture(scope="module")
def image(engine: Engine) -> Iterator[str]:
    import facade

    tag = f"localhost/facade-test:{uuid.uuid4().hex[:8]}"
    base = base_image(engine)
    # `pip install` in the build reaches PyPI through the host's network; --format docker
    # keeps the HEALTHCHECK (Podman drops it from OCI images).
    build = engine.run(
        "build", "--network", "host", *(["--format", "docker"] if engine.name == "podman"
                                        else []),
        *(["--build-arg", f"BASE={base}"] if base else []),
        "--build-arg", f"VERSION={facade.__version__}", "--build-arg", "REVISION=test",
        "-t", tag, str(ROOT), timeout=840, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    yield tag
    engine.run("image", "rm", "-f", tag, check=False)


def _wait_for_line(engine: Engine, name: str, needle: str, timeout: float = 90) -> str:
    """Follow the container's log until `needle` appears (or the container ends): what it
    printed so far. A timer ends the follow if neither happens in `timeout` seconds."""
    follow = engine.popen("logs", "-f", name)
    timer = threading.Timer(timeout, follow.kill)
    timer.start()
    seen = []
    try:
        assert follow.stdout is not None
        for line in follow.stdout:
            seen.append(line)
            if needle in line:
                break
    finally:
        timer.cancel()
        follow.kill()
        follow.communicate()
    output = "".join(seen)
    assert needle in output, output[-3000:]
    return output


def _assert_healthy(engine: Engine, name: str) -> None:
    """Run the image's HEALTHCHECK now (Podman runs it on demand; Docker on its interval,
    so wait for its first health event)."""
    if engine.name == "podman":
        engine.run("healthcheck", "run", name, timeout=60)
        return
    events = engine.popen("events", "--filter", f"container={name}", "--filter",
                          "event=health_status", "--since", "0", "--format", "{{.Status}}")
    timer = threading.Timer(90, events.kill)
    timer.start()
    try:
        assert events.stdout is not None
        first = events.stdout.readline().strip()
    finally:
        timer.cancel()
        events.kill()
        events.communicate()
    assert first.endswith("healthy") and not first.endswith("unhealthy"), first


@pytest.mark.integration
@pytest.mark.timeout(900)  # the first test to use `image` also pays for the build
def test_image_runs_a_subcommand_has_its_labels_and_no_pip(engine: Engine, image: str
                                                           ) -> None:
    import facade

    checked = engine.run("run", "--rm", image, "check")  # the entrypoint is `facade`
    assert "ok, 4 tool(s)" in checked.stdout
    labels = json.loads(engine.run("image", "inspect", "--format",
                                   "{{json .Config.Labels}}", image).stdout)
    assert labels["org.opencontainers.image.version"] == facade.__version__
    assert labels["org.opencontainers.image.revision"] == "test"
    for label in OCI_LABELS:
        assert f"org.opencontainers.image.{label}" in labels, label
    # The service's Python has no installer, and holds exactly the lock's versions.
    probe = textwrap.dedent("""
        import importlib.metadata as m, importlib.util as u, json, shutil
        print(json.dumps({"importable": [n for n in ("pip", "setuptools", "wheel")
                                         if u.find_spec(n)],
                          "on_path": [shutil.which(n) for n in ("pip", "pip3", "wheel")
                                      if shutil.which(n)],
                          "versions": {d.metadata["Name"]: d.version
                                       for d in m.distributions()}}))""")
    found = json.loads(engine.run("run", "--rm", "--entrypoint", "python", image, "-c",
                                  probe).stdout)
    assert found["importable"] == [] and found["on_path"] == []
    installed = {canonicalize_name(n): v for n, v in found["versions"].items()}
    assert installed.pop(canonicalize_name(DISTRIBUTION)) == facade.__version__
    assert installed == {name: version for name, (version, _) in _locked().items()}


AUTH_CURATION = """
    version: 1
    spec: specs/inventory.yaml
    server:
      name: inventory
      auth:
        tokens: [{principal: ci, token_env: FACADE_TOKEN_CI}]
      shutdown_grace: 5
    backend:
      base_url: http://127.0.0.1:9/v1
      auth: {bearer_env: INVENTORY_TOKEN}
    tools:
      get_item:
        operation: getItem
        params:
          itemId: {rename: sku}
          X-Tenant: {value: acme}
"""


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_image_serves_with_auth_health_on_its_port_and_a_graceful_stop(
        engine: Engine, image: str, tmp_path: Path) -> None:
    curation = tmp_path / "curation.yaml"
    curation.write_text(textwrap.dedent(AUTH_CURATION).lstrip())
    curation.chmod(0o644)
    port = free_port()
    name = f"facade-test-{uuid.uuid4().hex[:8]}"
    # FACADE_PORT moves both the server and its HEALTHCHECK off the default 8000.
    engine.run("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:9000", "--read-only",
               "--tmpfs", "/tmp", "-e", "FACADE_PORT=9000",
               "-v", f"{curation}:/app/curation.yaml:ro", "-e", f"FACADE_TOKEN_CI={TOKEN}",
               "-e", "INVENTORY_TOKEN=backend-token-0123456789", image)
    try:
        _wait_for_line(engine, name, "Uvicorn running on http://0.0.0.0:9000")
        _assert_healthy(engine, name)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/readyz", trust_env=False).text == "ready\n"
        assert engine.run("exec", name, "id", "-u").stdout.strip() == "10001"
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2025-11-25"}
        assert httpx.post(base + "/mcp", json=body, headers=headers,
                          trust_env=False).status_code == 401
        listed = httpx.post(base + "/mcp", json=body, trust_env=False, headers={
            **headers, "Authorization": f"Bearer {TOKEN}"})
        assert [t["name"] for t in listed.json()["result"]["tools"]] == ["get_item"]
        engine.run("stop", "-t", "20", name, timeout=60)
        state = json.loads(engine.run("inspect", "--format", "{{json .State}}", name).stdout)
        assert state["ExitCode"] == 0
        logs = engine.run("logs", name)
        assert '"logger":"facade.serve","message":"stopped"' in logs.stderr + logs.stdout
        assert TOKEN not in logs.stderr + logs.stdout
    finally:
        engine.run("rm", "-f", name, check=False)


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_image_refuses_to_serve_the_open_example_publicly(engine: Engine, image: str) -> None:
    run = engine.run("run", "--rm", "-e", "INVENTORY_TOKEN=x", image, check=False)
    assert run.returncode == 1
    assert "refusing to serve on 0.0.0.0 without inbound auth" in run.stderr


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_image_calls_a_backend_on_the_host(engine: Engine, image: str,
                                           example_env: dict[str, str]) -> None:
    """A real tool call through the image (`facade call`, with its baked-in curation and
    artifact) to the example backend on this machine's 127.0.0.1, over host networking."""
    seen = inventory_backend.Handler.seen
    before = len(seen)
    called = engine.run(
        "run", "--rm", "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "-e", f"INVENTORY_URL={example_env['INVENTORY_URL']}",
        "-e", f"INVENTORY_TOKEN={example_env['INVENTORY_TOKEN']}",
        # Named, so a missing or stale artifact says so on stderr.
        "-e", "FACADE_ARTIFACT=/app/curation.artifact.json",
        image, "call", "get_item", "--args", '{"sku": "SKU-1042"}', timeout=120, check=False)
    if called.returncode != 0 and "onnect" in called.stderr and len(seen) == before:
        pytest.fail("the container could not reach this machine's 127.0.0.1 over host "
                    "networking (a remote or rootless engine?):\n" + called.stderr[-2000:])
    assert called.returncode == 0, called.stderr[-3000:]
    check_item(json.loads(called.stdout))
    assert_no_leaks(called.stdout)
    assert "loading the spec" not in called.stderr  # it started from the baked artifact
    assert example_env["INVENTORY_TOKEN"] not in called.stdout + called.stderr
    assert len(seen) == before + 1
    check_backend_request(seen[-1], "/v1/items/SKU-1042", {"expand": ["supplier"]})
