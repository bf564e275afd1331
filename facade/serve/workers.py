"""Serve time: `facade serve --transport http --workers N`, N processes on one port.

The parent loads the curation once, checks that the port is free and holds it, then forks
N workers; each builds its own app (backend clients, breaker, rate limiter, hot reload),
listens on its own `SO_REUSEPORT` socket of that port, so the kernel spreads connections
evenly over them, and runs the same uvicorn server as a single process does, graceful
drain included. The parent serves nothing: it forwards signals and reaps.

    SIGTERM / SIGINT to the parent   → SIGTERM to every worker: each drains within
                                       `server.shutdown_grace`; a second signal stops them
    a worker exits on its own         → the others are stopped the same way and the parent
                                       exits 1, naming it: a container restarts as a whole,
                                       visibly, as it would with one process
    the parent disappears (SIGKILL)   → each worker notices within 0.1 s and drains

Forking (rather than starting fresh interpreters) keeps start-up at one load of the
curation and lets the workers share the parent's imported code copy-on-write. Workers
ignore SIGINT: Ctrl-C reaches the whole process group, and the parent's forwarded SIGTERM
is the one that counts.

Metrics: the parent prepares a directory for prometheus-client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR` if set, emptied; else a temporary one, removed at exit), each
worker writes its values there and `/metrics` sums them (`facade.serve.metrics`); the
parent marks each exited worker dead so that live gauges forget it.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from prometheus_client import multiprocess

from facade.serve.http import (
    ServeError,
    build_http,
    check_bind,
    describe,
    public_url_for,
    run,
    say,
)
from facade.serve.metrics import use_multiprocess
from facade.serve.process import freeze_heap
from facade.tools import Facade

__all__ = ["METRICS_DIR_ENV", "Worker", "WorkerFailed", "bind", "metrics_dir", "serve_workers",
           "supervise"]

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Past the grace period, what a worker may still take to close its connections and its
# backend clients before the parent kills it.
_STOP_MARGIN = 10.0


class WorkerFailed(ServeError):
    """A worker exited on its own; the message names it and how it ended."""


@dataclass(frozen=True)
class Worker:
    """What a forked worker is given: its number (1…N), the metrics directory, and its
    parent's pid."""

    index: int
    metrics: Path
    parent: int


def serve_workers(facade: Facade, *, host: str, port: int, workers: int,
                  allow_unauthenticated: bool = False,
                  environ: Mapping[str, str] | None = None, watch: Path | None = None,
                  finish: Callable[[], None] | None = None) -> None:
    """`serve_http` over `workers` processes: serve until SIGTERM, drain them all. Each
    worker runs `finish` once it has stopped serving (`serve` exports the spans it batched:
    a forked worker ends without running exit handlers).

    Raises:
        ServeError: as `serve_http` (raised once, here, before any worker starts), the port
            cannot be bound, or a worker failed (`WorkerFailed`).
    """
    if not hasattr(os, "fork"):
        raise ServeError("--workers needs a system that can fork processes (Linux, macOS)")
    environ = os.environ if environ is None else environ
    settings = facade.serving
    check_bind(host, settings, allow_unauthenticated)
    public_url = public_url_for(host, port, settings)
    # Built once here, and dropped: a missing credential stops `serve` with one message
    # rather than one per worker.
    build_http(facade, public_url=public_url, environ=environ, watch=watch)
    try:
        with bind(host, port):  # free, not even shared with another server's workers
            pass
        held = bind(host, port, share=True)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    def run_worker(worker: Worker) -> int:
        app, lifecycle = build_http(facade, public_url=public_url, environ=environ,
                                    watch=watch, metrics_dir=worker.metrics,
                                    worker=worker.index)
        try:
            sock = bind(host, port, share=True)
        except OSError as exc:
            say(f"worker {worker.index} cannot listen on {host}:{port}: "
                f"{exc.strerror or exc}")
            return 1
        with contextlib.closing(sock):
            started = run(app, lifecycle, host, port, settings.limits, sock=sock,
                          parent=worker.parent)
        if finish is not None:
            finish()
        return 0 if started else 3  # uvicorn's own code for a start-up failure

    freeze_heap()  # before the fork: a worker's collector leaves the shared pages alone
    with contextlib.closing(held), metrics_dir(environ) as directory:
        say(f"serving {len(facade.tools)} tool(s) at http://{host}:{port}/mcp "
            f"({describe(settings)}; {workers} workers)")
        supervise(run_worker, workers, directory, settings.shutdown_grace, held)
    say(f"stopped ({workers} workers)")


def bind(host: str, port: int, *, share: bool = False) -> socket.socket:
    """A socket bound to the address, not listening. With `share`, it is one of the
    workers' `SO_REUSEPORT` sockets: each worker binds its own and listens on it once its
    app has started (so, as with one process, nothing answers before the tools are
    registered), and the kernel spreads new connections evenly over the listening ones.
    (On one shared socket, the worker that wakes first accepts every connection that is
    waiting: on a quiet machine one worker took 620 of 640 calls from 32 new
    connections.) The parent holds one such socket, never listened on, so the port stays
    the workers' from start to stop.

    Raises:
        OSError: the address cannot be bound (in use, not local).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if share:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def metrics_dir(environ: Mapping[str, str]) -> Iterator[Path]:
    """The multiprocess metrics directory, empty: the operator's (`PROMETHEUS_MULTIPROC_DIR`),
    created if missing and rid of the `.db` files of an earlier run, or a temporary one
    removed afterwards.

    Raises:
        ServeError: the directory cannot be created or emptied.
    """
    given = environ.get(METRICS_DIR_ENV)
    try:
        if given:
            path = Path(given)
            path.mkdir(parents=True, exist_ok=True)
            for stale in path.glob("*.db"):
                stale.unlink()
        else:
            path = Path(tempfile.mkdtemp(prefix="facade-metrics-"))
    except OSError as exc:
        where = given or tempfile.gettempdir()
        raise ServeError(f"cannot prepare the metrics directory of the workers in {where}: "
                         f"{exc.strerror or exc} (set {METRICS_DIR_ENV} to a writable "
                         "directory)") from None
    try:
        yield path
    finally:
        if not given:
            shutil.rmtree(path, ignore_errors=True)


def supervise(run_worker: Callable[[Worker], int], count: int, metrics: Path, grace: float,
              held: socket.socket | None = None) -> None:
    """Fork `count` workers, each returning `run_worker(worker)` as its exit code; forward
    SIGTERM and SIGINT to them as SIGTERM; return once they have all exited. A worker
    closes `held`, the parent's socket, at once.

    Raises:
        WorkerFailed: a worker exited before it was told to stop, or a stopped worker
            did not exit cleanly (the others are then stopped as on SIGTERM).
    """
    context = multiprocessing.get_context("fork")
    parent = os.getpid()
    # What the parent loaded stays shared with the workers until written to: keep the
    # garbage collector's passes (which write to every object they visit) off it.
    gc.freeze()
    workers: dict[int, BaseProcess] = {}
    for index in range(1, count + 1):
        worker = Worker(index, metrics, parent)
        process: BaseProcess = context.Process(target=_work, name=f"facade-worker-{index}",
                                  args=(run_worker, worker, held))
        process.start()
        workers[index] = process
    stopping: list[float] = []  # when the first stop signal came, once it has

    def stop_all(sig: int, frame: FrameType | None) -> None:
        if not stopping:
            stopping.append(time.monotonic())
        for process in workers.values():  # on a second signal, the workers stop at once
            if process.exitcode is None and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop_all) for sig in (signal.SIGTERM, signal.SIGINT)}
    failure = ""
    try:
        live = dict(workers)
        while live:
            wait([p.sentinel for p in live.values()], timeout=0.5)
            for index, process in list(live.items()):
                if process.exitcode is None:
                    continue
                del live[index]
                multiprocess.mark_process_dead(process.pid, str(metrics))  # type: ignore[no-untyped-call]
                ended = f"worker {index} (pid {process.pid}) {_how(process.exitcode)}"
                if not stopping:
                    say(f"{ended} while serving; stopping the other worker(s)")
                    failure = failure or ended
                    stop_all(signal.SIGTERM, None)
                elif process.exitcode != 0:
                    failure = failure or ended
            if stopping and live and time.monotonic() - stopping[0] > grace + _STOP_MARGIN:
                for process in live.values():
                    process.kill()
                failure = failure or (f"{len(live)} worker(s) still running "
                                      f"{grace + _STOP_MARGIN:g} s after the stop: killed")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in workers.values():
            if process.exitcode is None:
                process.kill()
            process.join()
    if failure:
        raise WorkerFailed(failure)


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"


def _work(run_worker: Callable[[Worker], int], worker: Worker,
          held: socket.socket | None) -> None:
    """A forked worker: its metrics go to the shared directory, then it serves. Until its
    server takes the signals over, SIGINT is ignored and SIGTERM ends it quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_before_serving)
    if held is not None:
        held.close()
    use_multiprocess(worker.metrics)
    sys.exit(run_worker(worker))


def _stop_before_serving(sig: int, frame: FrameType | None) -> None:
    sys.exit(0)
