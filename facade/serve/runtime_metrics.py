"""Serve time: the series of /metrics that describe the process rather than its calls.

For a fleet of replicas: what each one runs, and what it costs. Kept apart from the call
metrics (`facade.serve.metrics`), which register these on their registry.

    facade_build_info{version,fastmcp_version}   always 1
    process_*    CPU seconds, resident and virtual memory, open fds, start time (Linux)
    python_*     python_info{implementation,major,minor,patchlevel,version}, GC counts
"""

from __future__ import annotations

import fastmcp
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from facade.version import __version__

__all__ = ["add_runtime_metrics"]


def add_runtime_metrics(registry: CollectorRegistry) -> None:
    """Register the build info gauge and prometheus-client's process, platform and GC
    collectors on `registry`."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    Gauge("facade_build_info", "The facade version this replica runs, and its fastmcp; "
          "always 1.", ["version", "fastmcp_version"], registry=registry).labels(
        __version__, fastmcp.__version__).set(1)
