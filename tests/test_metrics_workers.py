"""Every metric facade defines, aggregated across the workers of `serve --workers N`.

prometheus-client chooses how values are kept once per process, so the workers here are
real forked processes of a child interpreter (this one keeps its single-process metrics):
each feeds every observer hook, then the child renders what `/metrics` would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from facade.serve.http import ServeError
from facade.serve.workers import metrics_dir

WORKERS = textwrap.dedent("""
    import multiprocessing, sys, time
    from pathlib import Path
    from facade.call.events import CallRecord
    from facade.deviations import Deviation
    from facade.serve.metrics import Metrics, registry_for, use_multiprocess
    from prometheus_client import generate_latest, multiprocess

    directory = Path(sys.argv[1])

    def worker(index, done, stay):
        use_multiprocess(directory)
        m = Metrics(["get_item", "list_items"], ["http://b"], directory)
        for n in range(index):  # worker 1 makes one call, worker 2 two
            record = CallRecord(tool="get_item", request_id=f"{index}-{n}", principal=None,
                                arguments={})
            m.call_started(record)
            record.outcome, record.response_bytes = "ok", 100
            record.started = time.perf_counter() - 0.02  # a 20 ms call
            m.call_finished(record)
            m.backend_response("get_item", 200, 0.01)
            m.retry("get_item", "503")
            m.response_deviations("get_item", [Deviation("$.a", "null", "string", "null")])
            m.shed()
            m.token_exchange("http://idp", "ok")
        m.call_started(CallRecord(tool="list_items", request_id=f"open-{index}",
                                  principal=None, arguments={}))  # still under way
        if index == 2:
            m.breaker_changed("http://b", "open")
        done.set()
        stay.wait(30)

    context = multiprocessing.get_context("fork")
    stay = context.Event()
    workers = []
    for index in (1, 2):
        done = context.Event()
        process = context.Process(target=worker, args=(index, done, stay))
        process.start()
        done.wait(30)
        workers.append(process)
    use_multiprocess(directory)
    sys.stdout.write(generate_latest(registry_for(directory)).decode() + "---\\n")
    stay.set()
    for process in workers:
        process.join(30)
    multiprocess.mark_process_dead(workers[1].pid, str(directory))  # as the parent does
    sys.stdout.write(generate_latest(registry_for(directory)).decode())
""")


def _samples(text: str) -> dict[str, float]:
    return {name: float(value) for name, _, value in
            (line.rpartition(" ") for line in text.splitlines())
            if name and not name.startswith("#")}


def _run(tmp_path: Path) -> tuple[dict[str, float], dict[str, float], str]:
    done = subprocess.run([sys.executable, "-c", WORKERS, str(tmp_path)], capture_output=True,
                          timeout=60, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr.decode()
    live, _, after = done.stdout.decode().partition("---\n")
    return _samples(live), _samples(after), live


def test_every_metric_is_summed_over_the_workers(tmp_path: Path) -> None:
    live, after, text = _run(tmp_path)
    # Counters and histograms: worker 1's one call plus worker 2's two.
    assert live['facade_tool_calls_total{outcome="ok",tool="get_item"}'] == 3
    assert live['facade_tool_calls_total{outcome="ok",tool="list_items"}'] == 0
    assert live['facade_tool_call_duration_seconds_count{tool="get_item"}'] == 3
    assert live['facade_tool_call_duration_seconds_bucket{le="0.05",tool="get_item"}'] == 3
    assert live['facade_tool_call_duration_seconds_bucket{le="0.01",tool="get_item"}'] == 0
    assert 0.06 <= live['facade_tool_call_duration_seconds_sum{tool="get_item"}'] < 0.15
    assert live['facade_backend_responses_total{status="200",tool="get_item"}'] == 3
    assert live['facade_backend_response_duration_seconds_count{tool="get_item"}'] == 3
    assert live['facade_backend_response_bytes_total{tool="get_item"}'] == 300
    assert live['facade_backend_retries_total{reason="503",tool="get_item"}'] == 3
    assert live['facade_response_deviations_total{kind="null",tool="get_item"}'] == 3
    assert live["facade_requests_shed_total"] == 3
    assert live['facade_token_exchanges_total{backend="http://idp",outcome="ok"}'] == 3
    # Live gauges: summed over the workers alive.
    assert live['facade_tool_calls_in_flight{tool="list_items"}'] == 2
    assert live['facade_tool_calls_in_flight{tool="get_item"}'] == 0
    breaker = 'facade_circuit_breaker_state{backend="http://b",facade_circuit_breaker_state="%s"}'
    assert [live[breaker % s] for s in ("closed", "half_open", "open")] == [1, 0, 1]
    # Each family once, with the type one process gives it.
    for family, kind in [("facade_tool_calls_total", "counter"),
                         ("facade_tool_call_duration_seconds", "histogram"),
                         ("facade_tool_calls_in_flight", "gauge"),
                         ("facade_circuit_breaker_state", "gauge"),
                         ("facade_token_exchanges_total", "counter")]:
        assert text.count(f"# TYPE {family} {kind}\n") == 1

    # Worker 2 exited and was marked dead: its counts stay, its live gauges go.
    assert after['facade_tool_calls_total{outcome="ok",tool="get_item"}'] == 3
    assert after["facade_requests_shed_total"] == 3
    assert after['facade_tool_calls_in_flight{tool="list_items"}'] == 1
    assert [after[breaker % s] for s in ("closed", "half_open", "open")] == [1, 0, 0]


def test_one_process_keeps_its_own_registry() -> None:
    """Without a multiprocess directory, nothing changed: the breaker is an Enum."""
    from facade.serve.metrics import Metrics

    metrics = Metrics(["get_item"], ["http://b"])
    metrics.breaker_changed("http://b", "open")
    text = metrics.render().decode()
    assert ('facade_circuit_breaker_state{backend="http://b",'
            'facade_circuit_breaker_state="open"} 1.0') in text
    assert "The backend's circuit breaker." in text
    assert [c for c in metrics.registry.collect() if c.name == "facade_circuit_breaker_state"
            ][0].type == "stateset"


def test_a_metrics_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ServeError, match=(
            rf"^cannot prepare the metrics directory of the workers in {blocker}/metrics: "
            r".+ \(set PROMETHEUS_MULTIPROC_DIR to a writable directory\)$")):
        with metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(blocker / "metrics")}):
            pass


def test_the_operators_metrics_directory_is_emptied_and_kept(tmp_path: Path) -> None:
    (tmp_path / "counter_12345.db").write_bytes(b"from an earlier run")
    (tmp_path / "notes.txt").write_text("not ours")
    with metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}) as path:
        assert path == tmp_path
        assert sorted(p.name for p in path.iterdir()) == ["notes.txt"]
    assert tmp_path.is_dir()
    with metrics_dir({}) as made:
        assert made.is_dir() and not any(made.iterdir())
    assert not made.exists()  # a temporary one is removed


def _fake_proc(root: Path, processes: dict[int, tuple[int, int, int, int]]) -> None:
    """A /proc with `pid: (ppid, cpu ticks, rss pages, open fds)` for each process."""
    (root / "stat").write_text("cpu  1 2 3\nbtime 1700000000\n")
    for pid, (ppid, ticks, pages, fds) in processes.items():
        entry = root / str(pid)
        (entry / "fd").mkdir(parents=True)
        for fd in range(fds):
            (entry / "fd" / str(fd)).write_text("")
        # Fields after the name: state ppid … utime(12th) stime(13th) … starttime(20th)
        # vsize(21st) rss(22nd); a name with a space and a parenthesis, as /proc allows.
        after = ["S", str(ppid)] + ["0"] * 9 + [str(ticks), "0"] + ["0"] * 6 + [
            str(100 * pid), str(4096 * pages), str(pages)]
        (entry / "stat").write_text(f"{pid} (python3 (x)) " + " ".join(after) + "\n")
        (entry / "limits").write_text(f"Max open files            {1000 + pid}  4096  files\n")
    (root / "self").mkdir()


def test_process_series_are_summed_over_the_parent_and_its_workers(tmp_path: Path) -> None:
    """With `--workers N`, `process_*` describe the whole replica: the parent (10) and its
    workers (11, 12), not another process (13) nor the worker that answered alone."""
    import os

    from prometheus_client import CollectorRegistry, generate_latest

    from facade.serve.runtime_metrics import _FleetProcess, children_of

    _fake_proc(tmp_path, {10: (1, 100, 10, 3), 11: (10, 250, 20, 4), 12: (10, 50, 30, 5),
                          13: (99, 9999, 999, 99)})
    assert sorted(children_of(10, str(tmp_path))) == [11, 12]
    registry = CollectorRegistry()
    registry.register(_FleetProcess(10, str(tmp_path)))
    samples = _samples(generate_latest(registry).decode())
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    assert samples["process_cpu_seconds_total"] == pytest.approx(400 / ticks)
    assert samples["process_resident_memory_bytes"] == 60 * page
    assert samples["process_virtual_memory_bytes"] == 4096 * 60
    assert samples["process_open_fds"] == 12
    assert samples["process_start_time_seconds"] == pytest.approx(1700000000 + 1000 / ticks)
    assert samples["process_max_fds"] == 1010  # the parent's limit


def test_build_info_is_one_series_across_workers(tmp_path: Path) -> None:
    """A constant produced at each scrape: not one series per worker."""
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from facade.serve.metrics import Metrics, use_multiprocess
        directory = Path(sys.argv[1])
        use_multiprocess(directory)
        first = Metrics(["get_item"], [], directory)
        Metrics(["get_item"], [], directory)  # a second worker's, same directory
        sys.stdout.write(first.render().decode())
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                          timeout=60, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    assert text.count("# TYPE facade_build_info gauge\n") == 1
    assert len([line for line in text.splitlines()
                if line.startswith("facade_build_info{")]) == 1
    assert "process_cpu_seconds_total " in text


def test_a_worker_file_not_yet_sized_fails_neither_start_nor_scrape(tmp_path: Path) -> None:
    """prometheus-client creates a worker's file, then sizes it (prometheus/client_python
    #1199). A worker starting meanwhile read every file as its collector registered and died
    of the empty one; a scrape meanwhile failed whole. The empty file is skipped now."""
    from prometheus_client import generate_latest
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    from facade.serve.metrics import registry_for

    written = MmapedDict(str(tmp_path / "counter_101.db"))
    written.write_value(mmap_key("facade_requests_shed", "facade_requests_shed_total", [], [],
                                 "Requests shed."), 3.0, 0.0)
    written.close()
    (tmp_path / "counter_102.db").touch()  # a worker that has just created its file

    registry = registry_for(tmp_path)  # as a worker's Metrics does when it starts
    assert _samples(generate_latest(registry).decode())["facade_requests_shed_total"] == 3.0
