"""Serve time: the series of /metrics that describe the process rather than its calls.

For a fleet of replicas: what each one runs, and what it costs. Kept apart from the call
metrics (`facade.serve.metrics`), which register these on their registry.

    facade_build_info{version,fastmcp_version}   always 1
    process_*    CPU seconds, resident and virtual memory, open fds, start time (Linux)
    python_*     python_info{implementation,major,minor,patchlevel,version}, GC counts

With `serve --workers N` a replica is several processes: its `process_*` series are then
the sums over the parent and its workers (CPU seconds, memory, open fds), with the
parent's start time and file limit, whichever worker answers the scrape. `python_gc_*`
describe the worker that answered.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path

import fastmcp
from prometheus_client import CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from facade.version import __version__

__all__ = ["add_runtime_metrics"]

_SUMMED = frozenset({"process_cpu_seconds", "process_resident_memory_bytes",
                     "process_virtual_memory_bytes", "process_open_fds"})


def add_runtime_metrics(registry: CollectorRegistry, *, workers_of: int | None = None) -> None:
    """Register the build info and prometheus-client's process, platform and GC collectors
    on `registry`; with `workers_of` (the pid of `serve --workers N`'s parent), the process
    series cover the parent and all its workers."""
    if workers_of is None:
        ProcessCollector(registry=registry)
    else:
        registry.register(_FleetProcess(workers_of))
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(_BuildInfo())


class _BuildInfo(Collector):
    """A constant, produced at each scrape rather than kept in a metric: in multiprocess
    mode a `Gauge` would be written to every worker's file and read back once per worker."""

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("facade_build_info", "The facade version this replica runs, "
                                 "and its fastmcp; always 1.",
                                 labels=["version", "fastmcp_version"])
        info.add_metric([__version__, fastmcp.__version__], 1)
        return [info]


class _FleetProcess(Collector):
    """`process_*` of a parent and its children, summed; start time and `max_fds` are the
    parent's."""

    def __init__(self, parent: int, proc: str = "/proc") -> None:
        self.parent, self.proc = parent, proc

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for pid in [self.parent, *children_of(self.parent, self.proc)]:
            for family in ProcessCollector(pid=functools.partial(int, pid), proc=self.proc,
                                           registry=None).collect():
                first = merged.setdefault(family.name, family)
                if first is not family and family.name in _SUMMED:
                    sample = first.samples[0]
                    first.samples[0] = sample._replace(
                        value=sample.value + family.samples[0].value)
        return list(merged.values())


def children_of(pid: int, proc: str = "/proc") -> list[int]:
    """The pids whose parent is `pid` (Linux's /proc; none elsewhere)."""
    found: list[int] = []
    try:
        entries = os.listdir(proc)
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = (Path(proc) / entry / "stat").read_bytes()
        except OSError:
            continue  # exited meanwhile
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid).encode():
            found.append(int(entry))
    return found
