"""A real `redis-server` for the tests of the shared rate limit, on a free 127.0.0.1 port.

Each test module starts its own, in a temporary directory, with persistence off
(`--save '' --appendonly no`), and stops it. Where the binary is absent the tests skip with
a reason, except in CI (`CI=true`, or `FACADE_REQUIRE_REDIS=1`, which `.ci/run` sets after
installing it), where they fail: CI must never lose them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["RedisServer", "redis_server_binary"]

MISSING = ("needs redis-server, which is not installed here (apt-get install redis-server; "
           ".ci/run installs it)")
START_TIMEOUT = 10.0


def redis_server_binary() -> str:
    """The path of redis-server; skips the test without it (fails it in CI)."""
    binary = shutil.which("redis-server")
    if binary is not None:
        return binary
    if os.environ.get("CI") == "true" or os.environ.get("FACADE_REQUIRE_REDIS") == "1":
        pytest.fail(f"CI requires Redis, but this test {MISSING}", pytrace=False)
    pytest.skip(MISSING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One redis-server child: `start()`, `kill()` (as a crash would), `pause()`/`resume()`
    (a hung server: connections open, nothing answers) and `stop()`."""

    def __init__(self, directory: Path, password: str | None = None) -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", str(self.directory),
                   "--logfile", str(self.directory / "redis.log")]
        if self.password:
            command += ["--requirepass", self.password]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.directory / "redis.log"
                self.stop()
                pytest.fail("redis-server did not start:\n" + (
                    log.read_text(errors="replace") if log.exists() else "(no log)"))
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        """Whether something on the port answers PING (with +PONG, or -NOAUTH)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64)[:1] in (b"+", b"-")
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
