"""deploy/kubernetes: a kustomize base and an example overlay, rendered offline (by
tests/e2e/kustomize_lite.py, checked against the real kustomize where one is installed);
every rendered object validates against the Kubernetes API schemas of two minor versions
(kubernetes-validate, strict: unknown fields and wrong types are errors), and the pieces
agree with each other and with facade (probes, ports, secrets, curation, network)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes.client as k8s
import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from facade import load
from facade.serve.http import PROBE_PATHS

from .conftest import ROOT
from .kustomize_lite import config_map_hash, render

DEPLOY = ROOT / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
KUSTOMIZATIONS = {"base": BASE, "example": DEPLOY / "overlays" / "example"}
# Two minor versions of the API, as kubernetes-validate ships their schemas.
KUBERNETES_VERSIONS = ("1.36.0", "1.37.0")
KINDS: dict[tuple[str, str], type[BaseModel]] = {
    ("v1", "Namespace"): k8s.V1Namespace,
    ("v1", "ServiceAccount"): k8s.V1ServiceAccount,
    ("v1", "ConfigMap"): k8s.V1ConfigMap,
    ("v1", "Service"): k8s.V1Service,
    ("apps/v1", "Deployment"): k8s.V1Deployment,
    ("policy/v1", "PodDisruptionBudget"): k8s.V1PodDisruptionBudget,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.V2HorizontalPodAutoscaler,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.V1NetworkPolicy,
}
RENDERED = {name: render(path) for name, path in KUSTOMIZATIONS.items()}
CONFIG_MAP_LIMIT = 1024 * 1024  # bytes of data in one ConfigMap


def _objects(overlay: str, kind: str) -> list[Any]:
    return [KINDS[(d["apiVersion"], kind)].model_validate(d) for d in RENDERED[overlay]
            if d["kind"] == kind]


def _one(overlay: str, kind: str) -> Any:
    [obj] = _objects(overlay, kind)
    return obj


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_the_offline_renderer_matches_kustomize(overlay: str) -> None:
    command = _kustomize()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed: the offline renderer is "
                    "checked against kustomize's own hash vectors only")
    out = subprocess.run([*command, str(KUSTOMIZATIONS[overlay])], capture_output=True,
                         text=True, timeout=120, check=True, stdin=subprocess.DEVNULL).stdout
    real = {_key(d): d for d in yaml.safe_load_all(out)}
    mine = {_key(d): d for d in RENDERED[overlay]}
    assert sorted(mine) == sorted(real)
    for key, doc in real.items():
        assert mine[key] == doc, key


def test_the_name_hash_is_kustomizes() -> None:
    """The vectors of kustomize's own tests (api/hasher): empty, one key, three keys."""
    assert config_map_hash({}) == "42745tchd9"
    assert config_map_hash({"one": ""}) == "9g67k2htb6"
    assert config_map_hash({"two": "2", "one": "", "three": "3"}) == "f5h7t85m9b"


def test_every_base_file_is_a_resource_or_generated() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    generated = {source.rpartition("=")[2] for generator in kustomization["configMapGenerator"]
                 for source in generator["files"]}
    on_disk = {str(p.relative_to(BASE)) for p in BASE.rglob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == set(kustomization["resources"]) | generated


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_every_object_validates_against_the_api_schema(overlay: str, version: str) -> None:
    kinds = set()
    for doc in RENDERED[overlay]:
        kubernetes_validate.validate(doc, version, strict=True)
        KINDS[(doc["apiVersion"], doc["kind"])].model_validate(doc)
        assert doc["metadata"]["labels"] == {"app.kubernetes.io/name": "facade"}
        kinds.add(doc["kind"])
    assert {kind for _, kind in KINDS} == kinds


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_validator_rejects_typos_and_wrong_types(version: str) -> None:
    """The check above means something: the schemas are strict."""
    [deployment] = [d for d in render(BASE) if d["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"][
        "paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        kubernetes_validate.validate(deployment, version, strict=True)
    [hpa] = [d for d in render(BASE) if d["kind"] == "HorizontalPodAutoscaler"]
    hpa["spec"]["minReplicas"] = "2"
    with pytest.raises(kubernetes_validate.ValidationError, match="'2' is not of type"):
        kubernetes_validate.validate(hpa, version, strict=True)


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_everything_is_in_the_namespace_it_creates(overlay: str) -> None:
    namespace = _one(overlay, "Namespace").metadata.name
    for doc in RENDERED[overlay]:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, _key(doc)


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_no_secret_is_shipped_and_the_pods_name_the_one_to_create(overlay: str) -> None:
    """`kubectl apply -k` and GitOps syncs never overwrite the real credentials."""
    assert not [d for d in RENDERED[overlay] if d["kind"] == "Secret"]
    [source] = _one(overlay, "Deployment").spec.template.spec.containers[0].env_from
    assert source.secret_ref.name == "facade-secrets"
    readme = (ROOT / "README.md").read_text()
    assert "kubectl create secret generic facade-secrets" in readme


def test_the_secret_to_create_names_every_credential(tmp_path: Path) -> None:
    facade = load(_mounted_project("base", tmp_path), environ={})
    assert facade.serving.auth is not None and facade.backend.auth is not None
    needed = {facade.backend.auth["bearer_env"]} | {t.token_env
                                                    for t in facade.serving.auth.tokens}
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Kubernetes"):]
    command = section[section.index("kubectl create secret generic facade-secrets"):]
    command = command[:command.index("\n\n")]
    assert set(re.findall(r"--from-literal=(\w+)=", command)) == needed


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_deployment_is_probed_bounded_and_locked_down(overlay: str) -> None:
    deployment = _one(overlay, "Deployment")
    spec, pod = deployment.spec, deployment.spec.template.spec
    assert spec.replicas is None  # the HorizontalPodAutoscaler owns it
    assert spec.selector.match_labels == deployment.spec.template.metadata.labels
    [container] = pod.containers
    assert container.liveness_probe.http_get.path == "/healthz"
    assert container.readiness_probe.http_get.path == "/readyz"
    assert {container.liveness_probe.http_get.path, container.readiness_probe.http_get.path
            } <= PROBE_PATHS  # exempt from the Host check: kubelet sends the pod IP
    assert container.resources.requests["cpu"] and container.resources.limits
    assert container.lifecycle.pre_stop.var_exec.command[0] == "sleep"
    security = container.security_context
    assert security.allow_privilege_escalation is False
    assert security.read_only_root_filesystem is True
    assert security.run_as_non_root is True and pod.security_context.run_as_non_root is True
    assert security.capabilities.drop == ["ALL"]
    assert pod.security_context.run_as_user == 10001  # the Dockerfile's user
    [port] = container.ports
    assert container.command is None  # the image's entrypoint, `facade`
    assert container.args == ["serve", "--transport", "http", "--host", "0.0.0.0", "--port",
                              str(port.container_port)]
    for probe in (container.liveness_probe, container.readiness_probe, container.startup_probe):
        assert probe.http_get.port == port.name


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_its_own_service_account_without_a_token(overlay: str) -> None:
    account = _one(overlay, "ServiceAccount")
    assert account.automount_service_account_token is False
    pod = _one(overlay, "Deployment").spec.template.spec
    assert pod.service_account_name == account.metadata.name
    assert pod.automount_service_account_token is False


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_service_pdb_and_autoscaler_select_the_pods(overlay: str) -> None:
    deployment = _one(overlay, "Deployment")
    labels = deployment.spec.template.metadata.labels
    service = _one(overlay, "Service")
    assert service.spec.selector == labels
    assert service.spec.ports[0].target_port == "http"
    pdb = _one(overlay, "PodDisruptionBudget")
    assert pdb.spec.selector.match_labels == labels
    hpa = _one(overlay, "HorizontalPodAutoscaler")
    target = hpa.spec.scale_target_ref
    assert (target.api_version, target.kind, target.name) == (
        "apps/v1", "Deployment", deployment.metadata.name)
    [metric] = hpa.spec.metrics
    assert metric.type == "Resource" and metric.resource.name == "cpu"
    assert metric.resource.target.type == "Utilization"
    assert 0 < metric.resource.target.average_utilization <= 100
    # Two or more pods always, one of which a drain may take.
    assert pdb.spec.min_available < hpa.spec.min_replicas
    assert 2 <= hpa.spec.min_replicas < hpa.spec.max_replicas


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_network_policy_admits_the_mcp_port_and_reaches_dns_and_the_backend(overlay: str
                                                                            ) -> None:
    policy = _one(overlay, "NetworkPolicy")
    deployment = _one(overlay, "Deployment")
    [container] = deployment.spec.template.spec.containers
    [port] = container.ports
    assert policy.spec.pod_selector.match_labels == deployment.spec.template.metadata.labels
    assert sorted(policy.spec.policy_types) == ["Egress", "Ingress"]
    [ingress] = policy.spec.ingress
    assert [(p.port, p.protocol) for p in ingress.ports] == [(port.name, "TCP")]
    dns, backend = policy.spec.egress
    assert sorted((p.port, p.protocol) for p in dns.ports) == [(53, "TCP"), (53, "UDP")]
    [peer] = dns.to
    assert peer.pod_selector.match_labels == {"k8s-app": "kube-dns"}
    assert peer.namespace_selector.match_labels == {
        "kubernetes.io/metadata.name": "kube-system"}
    # The backend rule names the namespace the backend URL points into: SERVICE.NAMESPACE.svc
    env = {e.name: e.value for e in container.env}
    host = urlsplit(env["INVENTORY_URL"]).hostname
    assert host is not None
    service, namespace, *_ = host.split(".")
    [peer] = backend.to
    assert peer.namespace_selector.match_labels == {"kubernetes.io/metadata.name": namespace}
    assert peer.pod_selector.match_labels == {"app.kubernetes.io/name": service}
    assert [p.protocol for p in backend.ports] == ["TCP"]


def test_the_overlay_sets_the_image_namespace_and_backend() -> None:
    [container] = _one("example", "Deployment").spec.template.spec.containers
    assert container.image == "registry.example.com/platform/facade:0.1.0"
    [base] = _one("base", "Deployment").spec.template.spec.containers
    assert base.image == "facade:0.1.0"
    assert _one("example", "Namespace").metadata.name == "inventory-mcp"
    assert _one("example", "HorizontalPodAutoscaler").spec.max_replicas == 10
    env = {e.name: e.value for e in container.env}
    assert env["INVENTORY_URL"] == "http://inventory.inventory.svc.cluster.local/v1"


def _mounted_project(overlay: str, tmp_path: Path) -> Path:
    """The files the pod sees under the projected volume's mount path, in `tmp_path`."""
    deployment = _one(overlay, "Deployment")
    maps = {c.metadata.name: c.data for c in _objects(overlay, "ConfigMap")}
    [volume] = [v for v in deployment.spec.template.spec.volumes if v.projected]
    keys_used = set()
    for source in volume.projected.sources:
        data = maps[source.config_map.name]
        for item in source.config_map.items:
            path = tmp_path / item.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[item.key])
            keys_used.add((source.config_map.name, item.key))
    assert keys_used == {(name, key) for name, data in maps.items() for key in data}
    [mount] = [m for m in deployment.spec.template.spec.containers[0].volume_mounts
               if m.name == volume.name]
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
    assert env["FACADE_CONFIG"] == f"{mount.mount_path}/curation.yaml"
    return tmp_path / "curation.yaml"


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_the_config_maps_hold_a_valid_curation_and_the_spec(overlay: str, tmp_path: Path
                                                           ) -> None:
    facade = load(_mounted_project(overlay, tmp_path), environ={})
    assert {t.name for t in facade.tools} == {"list_items", "get_item", "get_item_stock",
                                              "get_category"}
    serving = facade.serving
    assert serving.auth is not None and serving.auth.tokens
    service = _one(overlay, "Service").metadata.name
    assert service in serving.allowed_hosts
    assert f"{service}.*.svc.cluster.local" in serving.allowed_hosts
    for name in ("inventory.yaml", "components/parameters.yaml", "components/schemas.yaml"):
        assert (tmp_path / "specs" / name).read_text() == (ROOT / "specs" / name).read_text()


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_each_config_map_fits_the_api_limit(overlay: str) -> None:
    for config_map in _objects(overlay, "ConfigMap"):
        size = sum(len(k.encode()) + len(v.encode()) for k, v in config_map.data.items())
        assert size < CONFIG_MAP_LIMIT, config_map.metadata.name
    readme = (ROOT / "README.md").read_text()
    assert "#### A large spec" in readme


def test_an_edit_of_the_curation_or_the_spec_rolls_the_pods(tmp_path: Path) -> None:
    """The generated names carry a hash of the content, and the pod template names them:
    a changed ConfigMap is a changed pod template, which rolls the Deployment."""
    shutil.copytree(DEPLOY, tmp_path / "kubernetes")
    copy = tmp_path / "kubernetes" / "base"

    def template() -> dict[str, Any]:
        [deployment] = [d for d in render(copy) if d["kind"] == "Deployment"]
        spec: dict[str, Any] = deployment["spec"]["template"]
        return spec

    before = template()
    assert before == next(d for d in RENDERED["base"] if d["kind"] == "Deployment")[
        "spec"]["template"]
    with (copy / "curation.yaml").open("a") as curation:
        curation.write("# an edit\n")
    after_curation = template()
    assert after_curation != before
    with (copy / "specs" / "components" / "schemas.yaml").open("a") as spec:
        spec.write("# an edit\n")
    assert template() != after_curation


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_termination_grace_covers_prestop_and_the_drain(overlay: str, tmp_path: Path) -> None:
    facade = load(_mounted_project(overlay, tmp_path), environ={})
    pod = _one(overlay, "Deployment").spec.template.spec
    pre_stop = int(pod.containers[0].lifecycle.pre_stop.var_exec.command[1])
    # A drain takes at most shutdown_grace plus one second for stragglers.
    assert pod.termination_grace_period_seconds >= pre_stop + facade.serving.shutdown_grace + 1


def test_readme_walks_through_the_manifests() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Kubernetes"):readme.index("## Development")]
    assert "kubectl apply -k deploy/kubernetes/overlays/example" in section
    for path in sorted(DEPLOY.rglob("*.yaml")):
        if "specs" not in path.parts:
            assert str(path.relative_to(DEPLOY)) in section, path
