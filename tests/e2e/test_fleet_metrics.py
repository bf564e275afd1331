"""/metrics for a fleet: what each replica runs and what it costs, on a real
`facade serve --transport http`; and the example ServiceMonitor that scrapes it."""

from __future__ import annotations

import re
from pathlib import Path

import fastmcp
import httpx
import pytest
import yaml

from facade.serve.http import PROBE_PATHS
from facade.version import __version__

from .conftest import ROOT, HttpServer
from .kustomize_lite import render

pytestmark = pytest.mark.integration

DEPLOY = ROOT / "deploy" / "kubernetes"


def _samples(text: str) -> dict[str, float]:
    """`name{labels}` → value, for every sample line of the text format."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_describe_the_process_and_its_build(http_server: HttpServer) -> None:
    base = http_server.url.removesuffix("/mcp")
    response = httpx.get(base + "/metrics", trust_env=False, timeout=10,
                         headers={"Host": "10.1.2.3:8000"})  # as a scraper sends a pod IP
    assert response.status_code == 200
    samples = _samples(response.text)
    assert samples["process_cpu_seconds_total"] > 0
    assert samples["process_resident_memory_bytes"] > 10 * 1024 * 1024  # a Python with fastmcp
    assert samples["process_start_time_seconds"] > 0
    assert samples["process_open_fds"] > 0
    build = [name for name in samples if name.startswith("facade_build_info{")]
    assert build == [f'facade_build_info{{fastmcp_version="{fastmcp.__version__}",'
                     f'version="{__version__}"}}']
    assert samples[build[0]] == 1
    assert any(re.fullmatch(r'python_info\{.*version="3\.\d+\.\d+"\}', n) for n in samples)
    assert "# TYPE facade_build_info gauge" in response.text


def test_the_service_monitor_scrapes_the_service() -> None:
    """The example ServiceMonitor selects the Service by its labels, names its port, and
    scrapes /metrics, which the Host check lets through (Prometheus sends pod IPs)."""
    [monitor] = render(DEPLOY / "monitoring")
    [service] = [d for d in render(DEPLOY / "base") if d["kind"] == "Service"]
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1",
                                                        "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert monitor["metadata"]["labels"]["app.kubernetes.io/name"] == "facade"
    selector = monitor["spec"]["selector"]
    assert set(selector) == {"matchLabels"}
    assert selector["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in port_names
    assert endpoint["path"] == "/metrics" and endpoint["path"] in PROBE_PATHS
    assert endpoint["scheme"] == "http"
    # Durations as Prometheus writes them, the timeout within the interval.
    interval, timeout = (int(endpoint[k].removesuffix("s")) for k in ("interval",
                                                                       "scrapeTimeout"))
    assert 0 < timeout <= interval


def test_an_overlay_takes_the_monitor_beside_its_service(tmp_path: Path) -> None:
    """An overlay that adds `monitoring` to its resources (README, "Kubernetes") gets the
    ServiceMonitor in its own namespace, beside the Service it selects."""
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": "inventory-mcp",
        "resources": [str(DEPLOY / "overlays" / "example"), str(DEPLOY / "monitoring")]}))
    rendered = render(tmp_path)
    [monitor] = [d for d in rendered if d["kind"] == "ServiceMonitor"]
    [service] = [d for d in rendered if d["kind"] == "Service"]
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"] == \
        "inventory-mcp"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        service["metadata"]["labels"].items()
