"""The Docker image: its Dockerfile's promises always; the built image where an engine runs.

The image tests are skipped when `docker info` fails, i.e. when no Docker engine is
reachable from this machine; everything else here runs everywhere. With an engine, two
more conditions are checked, each skipping only the test that needs it: a default
`bridge` network (published ports; absent under `dockerd --bridge=none`), and host
networking that shares this machine's 127.0.0.1 (absent on Docker Desktop, rootless or
remote engines), through which the image calls a backend running in this test process."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import inventory_backend
import pytest

from .conftest import ROOT, assert_no_leaks, check_backend_request, check_item, free_port

DOCKERFILE = (ROOT / "Dockerfile").read_text()
TOKEN = "ci-token-0123456789abcdef0123"


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in
            joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_is_multi_stage_non_root_checked_and_healthchecked() -> None:
    steps = _instructions()
    stages = [arg for op, arg in steps if op == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    assert ("COPY", "--from=build /opt/facade /opt/facade") in final
    users = [arg for op, arg in final if op == "USER"]
    assert users == ["10001:10001"]  # numeric, so runAsNonRoot can verify it
    ops = [op for op, _ in final]
    # `facade check` runs as the final user, after the curation and spec are in place.
    check = final.index(("RUN", "facade check"))
    assert ops.index("USER") < check and ops.index("COPY") < check
    [healthcheck] = [arg for op, arg in final if op == "HEALTHCHECK"]
    assert "http://127.0.0.1:8000/healthz" in healthcheck
    [cmd] = [arg for op, arg in final if op == "CMD"]
    assert json.loads(cmd) == ["facade", "serve", "--transport", "http", "--host", "0.0.0.0",
                               "--port", "8000"]
    assert ("EXPOSE", "8000") in final and ("STOPSIGNAL", "SIGTERM") in final


def test_dockerignore_admits_only_what_the_image_copies() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {src.rstrip("/").removeprefix("./") for op, arg in _instructions() if op == "COPY"
              and not arg.startswith("--from") for src in arg.split()[:-1]}
    assert admitted == copied


def _docker(*args: str, timeout: float = 120, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=check, stdin=subprocess.DEVNULL)


def _engine() -> str | None:
    """None when a Docker engine answers; otherwise why `docker info` failed."""
    try:
        info = _docker("info", timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed: {exc}"
    if info.returncode != 0:
        return f"`docker info` failed: {(info.stderr or info.stdout).strip()[:200]}"
    return None


def _has_bridge() -> bool:
    """Whether the engine has its default `bridge` network (`dockerd --bridge=none` has not)."""
    return _docker("network", "inspect", "bridge", timeout=30, check=False).returncode == 0


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    reason = _engine()
    if reason is not None:
        pytest.skip(f"no Docker engine on this machine: {reason}")
    tag = f"facade-test:{uuid.uuid4().hex[:8]}"
    # `pip install` in the build needs a network: without the default bridge, the host's.
    network = [] if _has_bridge() else ["--network", "host"]
    build = _docker("build", *network, "-t", tag, str(ROOT), timeout=900, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    yield tag
    _docker("image", "rm", "-f", tag, check=False)


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
@pytest.mark.timeout(900)  # the first test to use `image` also pays for the build
def test_image_serves_with_auth_health_and_a_graceful_stop(image: str, tmp_path: Path
                                                           ) -> None:
    if not _has_bridge():
        pytest.skip("the Docker engine has no default bridge network (dockerd --bridge=none): "
                    "published ports cannot work")
    curation = tmp_path / "curation.yaml"
    curation.write_text(textwrap.dedent(AUTH_CURATION).lstrip())
    curation.chmod(0o644)
    port = free_port()
    name = f"facade-test-{uuid.uuid4().hex[:8]}"
    _docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", "--read-only",
            "--tmpfs", "/tmp", "--health-interval=1s", "--health-start-period=1s",
            "-v", f"{curation}:/app/curation.yaml:ro", "-e", f"FACADE_TOKEN_CI={TOKEN}",
            "-e", "INVENTORY_TOKEN=backend-token-0123456789", image)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while _docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip() \
                != "healthy":
            assert time.monotonic() < deadline, _docker("logs", name).stderr
            time.sleep(0.5)
        assert httpx.get(base + "/readyz", trust_env=False).text == "ready\n"
        assert _docker("exec", name, "id", "-u").stdout.strip() == "10001"
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2025-11-25"}
        assert httpx.post(base + "/mcp", json=body, headers=headers,
                          trust_env=False).status_code == 401
        listed = httpx.post(base + "/mcp", json=body, trust_env=False, headers={
            **headers, "Authorization": f"Bearer {TOKEN}"})
        assert [t["name"] for t in listed.json()["result"]["tools"]] == ["get_item"]
        _docker("stop", "-t", "20", name, timeout=60)
        state = json.loads(_docker("inspect", "-f", "{{json .State}}", name).stdout)
        assert state["ExitCode"] == 0
        logs = _docker("logs", name)
        assert "facade: stopped" in logs.stderr + logs.stdout
        assert TOKEN not in logs.stderr + logs.stdout
    finally:
        _docker("rm", "-f", name, check=False)


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_image_refuses_to_serve_the_open_example_publicly(image: str) -> None:
    run = _docker("run", "--rm", "-e", "INVENTORY_TOKEN=x", image, check=False)
    assert run.returncode == 1
    assert "refusing to serve on 0.0.0.0 without inbound auth" in run.stderr
    checked = _docker("run", "--rm", image, "facade", "check")
    assert "ok, 4 tool(s)" in checked.stdout


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_image_calls_a_backend_on_the_host(image: str, example_env: dict[str, str]) -> None:
    """A real tool call through the image, with its baked-in curation and artifact, to the
    example backend listening on this machine's 127.0.0.1 (host networking, so nothing
    listens beyond loopback: facade on 127.0.0.1 needs no inbound auth)."""
    backend_port = urlsplit(example_env["INVENTORY_URL"]).port
    # Exit 3: the container runs but cannot connect; 125: the engine refused host networking.
    probe = _docker("run", "--rm", "--network", "host", "--no-healthcheck", image, "python",
                    "-c", "import socket, sys\ntry: socket.create_connection(('127.0.0.1', "
                    f"{backend_port}), timeout=5).close()\nexcept OSError: sys.exit(3)",
                    timeout=120, check=False)
    if probe.returncode in (3, 125):
        pytest.skip("a --network host container does not reach this machine's 127.0.0.1 "
                    "(Docker Desktop, rootless or remote engine): " + probe.stderr[-300:])
    assert probe.returncode == 0, probe.stderr[-3000:]
    port = free_port()
    name = f"facade-test-{uuid.uuid4().hex[:8]}"
    # The image's HEALTHCHECK probes :8000, which on the host network is the host's port.
    _docker("run", "-d", "--name", name, "--network", "host", "--no-healthcheck",
            "--read-only", "--tmpfs", "/tmp",
            "-e", f"INVENTORY_URL={example_env['INVENTORY_URL']}",
            "-e", f"INVENTORY_TOKEN={example_env['INVENTORY_TOKEN']}",
            # Named, so a missing or stale artifact says so on stderr.
            "-e", "FACADE_ARTIFACT=/app/curation.artifact.json",
            image, "facade", "serve", "--transport", "http", "--host", "127.0.0.1",
            "--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", trust_env=False, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            running = _docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            assert running == "true" and time.monotonic() < deadline, \
                _docker("logs", name).stderr
            time.sleep(0.5)
        seen = inventory_backend.Handler.seen
        before = len(seen)
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "get_item", "arguments": {"sku": "SKU-1042"}}}
        called = httpx.post(base + "/mcp", json=body, trust_env=False, timeout=30, headers={
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25"})
        assert called.status_code == 200, called.text
        result = called.json()["result"]
        assert result["isError"] is False, result
        check_item(result["structuredContent"])
        assert_no_leaks(called.text)
        assert len(seen) == before + 1
        check_backend_request(seen[-1], "/v1/items/SKU-1042", {"expand": ["supplier"]})
        _docker("stop", "-t", "20", name, timeout=60)
        assert _docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "0"
        logs = _docker("logs", name)
        output = logs.stdout + logs.stderr
        assert "loading the spec" not in output, output  # it started from the baked artifact
        assert "facade: stopped" in output
        assert example_env["INVENTORY_TOKEN"] not in output
    finally:
        _docker("rm", "-f", name, check=False)
