"""A container engine for the image tests: Docker where its daemon answers, else Podman
(which needs no daemon), and a base image to build on that needs no registry.

Podman runs here as root inside a sandbox that cannot raise resource limits: its default
ulimits (open files and processes in the millions) make every container fail to start, so
the tests give it a containers.conf with ulimits under this machine's, and runc (crun
refuses this machine's hybrid cgroups) where runc is installed.

The Dockerfile builds FROM a digest of python:3.11-slim by default, which a machine with no
registry access cannot pull. FACADE_TEST_BASE names another base; otherwise, where
debootstrap is installed and the tests run as root, they make one: a minimal Debian with
Python 3.11, pip and this machine's CA certificates (the build's pip reaches PyPI through
them), from the machine's own apt mirror, imported as `localhost/facade-test-base:…` and
kept for the next run."""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BASE_PACKAGES = ("python3", "python3-pip", "python3-venv", "python-is-python3",
                 "ca-certificates")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class Engine:
    name: str  # "docker" or "podman"
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120, check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.name, *args], capture_output=True, timeout=timeout,
                              env=self.env, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
        result = subprocess.CompletedProcess(done.args, done.returncode,
                                             done.stdout.decode(errors="replace"),
                                             done.stderr.decode(errors="replace"))
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(done.args)} exited {done.returncode}:\n"
                                 + result.stderr[-3000:])
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([self.name, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=self.env,
                                stdin=subprocess.DEVNULL)

    def image_exists(self, tag: str) -> bool:
        return self.run("image", "inspect", tag, check=False, timeout=60).returncode == 0


def _answers(command: list[str], env: dict[str, str]) -> str | None:
    """None when `command` succeeds; otherwise why not."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`{' '.join(command)}` failed: {exc}"
    if done.returncode != 0:
        return f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip()[:200]}"
    return None


def find_engine(workdir: Path) -> Engine | str:
    """An engine that answers, or why there is none."""
    env = dict(os.environ)
    docker = _answers(["docker", "info"], env)
    if docker is None:
        return Engine("docker", env)
    if shutil.which("podman") is None:
        return f"{docker}; and podman is not installed"
    # Under this process's own limits: a container may not raise them.
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 4096)
    conf = workdir / "containers.conf"
    conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=4096:4096"]\n'
        + ("[engine]\nruntime = \"runc\"\n" if shutil.which("runc") else ""))
    env["CONTAINERS_CONF"] = str(conf)
    podman = _answers(["podman", "info"], env)
    if podman is not None:
        return f"{docker}; {podman}"
    return Engine("podman", env)


def _apt_mirror() -> str | None:
    """The machine's Debian mirror, from its apt sources (deb822 or one-line form)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        text = path.read_text()
        if re.search(r"^Suites:.*\bbookworm\b", text, re.MULTILINE):
            found = re.search(r"^URIs:\s*(\S+)", text, re.MULTILINE)
            if found and "security" not in found.group(1):
                return found.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        found = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", legacy.read_text(),
                          re.MULTILINE)
        if found:
            return found.group(1)
    return None


def base_image(engine: Engine) -> str:
    """The BASE build argument for the image tests: FACADE_TEST_BASE, a local Debian
    base (made once, see the module's docstring), or the Dockerfile's own default ('')."""
    if os.environ.get("FACADE_TEST_BASE"):
        return os.environ["FACADE_TEST_BASE"]
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        return ""
    key = hashlib.sha256(" ".join(BASE_PACKAGES).encode() + CA_BUNDLE.read_bytes())
    tag = f"localhost/facade-test-base:bookworm-{key.hexdigest()[:12]}"
    if engine.image_exists(tag):
        return tag
    mirror = _apt_mirror()
    with tempfile.TemporaryDirectory(prefix="facade-base-") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(
            BASE_PACKAGES), "bookworm", str(root), *([mirror] if mirror else [])],
            check=True, capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
        shutil.copyfile(CA_BUNDLE, root / "etc" / "ssl" / "certs" / CA_BUNDLE.name)
        shutil.rmtree(root / "var" / "cache" / "apt", ignore_errors=True)
        tar = subprocess.run(["tar", "-C", str(root), "-c", "."], check=True,
                             capture_output=True, timeout=300).stdout
        engine.run("import", "--change", 'CMD ["python3"]', "-", tag, input=tar,
                   timeout=300)
    return tag
