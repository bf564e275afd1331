"""deploy/kubernetes: every manifest validates against the Kubernetes API schema (the
`kubernetes` client's pydantic models: unknown fields and wrong types are errors), and the
pieces agree with each other and with facade (probes, ports, secrets, curation)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes.client as k8s
import pytest
import yaml
from pydantic import BaseModel

from facade import load
from facade.serve.http import PROBE_PATHS

from .conftest import ROOT

DEPLOY = ROOT / "deploy" / "kubernetes"
KINDS: dict[tuple[str, str], type[BaseModel]] = {
    ("v1", "ConfigMap"): k8s.V1ConfigMap,
    ("v1", "Secret"): k8s.V1Secret,
    ("v1", "Service"): k8s.V1Service,
    ("apps/v1", "Deployment"): k8s.V1Deployment,
    ("policy/v1", "PodDisruptionBudget"): k8s.V1PodDisruptionBudget,
}


def _documents() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    docs = {}
    for name in kustomization["resources"]:
        [doc] = list(yaml.safe_load_all((DEPLOY / name).read_text()))
        docs[doc["kind"]] = doc
    return docs


DOCS = _documents()


def _model(kind: str) -> Any:
    doc = DOCS[kind]
    return KINDS[(doc["apiVersion"], kind)].model_validate(doc)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(on_disk)
    [image] = kustomization["images"]
    assert image["name"] == _model("Deployment").spec.template.spec.containers[0].image.split(
        ":")[0]


@pytest.mark.parametrize("kind", sorted(k for _, k in KINDS))
def test_manifest_validates_against_the_api_schema(kind: str) -> None:
    doc = DOCS[kind]
    assert (doc["apiVersion"], kind) in KINDS
    model = _model(kind)
    assert model.metadata.labels == {"app.kubernetes.io/name": "facade"}


def test_the_validator_rejects_typos_and_wrong_types() -> None:
    """The check above means something: the models are strict."""
    doc = yaml.safe_load((DEPLOY / "deployment.yaml").read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(ValueError, match="paht"):
        k8s.V1Deployment.model_validate(doc)
    doc = yaml.safe_load((DEPLOY / "deployment.yaml").read_text())
    doc["spec"]["replicas"] = "2"
    with pytest.raises(ValueError, match="replicas"):
        k8s.V1Deployment.model_validate(doc)


def test_deployment_is_replicated_probed_bounded_and_locked_down() -> None:
    deployment = _model("Deployment")
    spec, pod = deployment.spec, deployment.spec.template.spec
    assert spec.replicas >= 2
    assert spec.selector.match_labels == deployment.spec.template.metadata.labels
    [container] = pod.containers
    assert container.liveness_probe.http_get.path == "/healthz"
    assert container.readiness_probe.http_get.path == "/readyz"
    assert {container.liveness_probe.http_get.path, container.readiness_probe.http_get.path
            } <= PROBE_PATHS  # exempt from the Host check: kubelet sends the pod IP
    assert container.resources.requests and container.resources.limits
    assert container.lifecycle.pre_stop.var_exec.command[0] == "sleep"
    security = container.security_context
    assert security.allow_privilege_escalation is False
    assert security.read_only_root_filesystem is True
    assert security.run_as_non_root is True and pod.security_context.run_as_non_root is True
    assert security.capabilities.drop == ["ALL"]
    assert pod.security_context.run_as_user == 10001  # the Dockerfile's user
    assert pod.automount_service_account_token is False
    [port] = container.ports
    assert container.args == ["serve", "--transport", "http", "--host", "0.0.0.0", "--port",
                              str(port.container_port)]
    for probe in (container.liveness_probe, container.readiness_probe, container.startup_probe):
        assert probe.http_get.port == port.name


def test_service_and_pdb_select_the_pods() -> None:
    labels = _model("Deployment").spec.template.metadata.labels
    service = _model("Service")
    assert service.spec.selector == labels
    assert service.spec.ports[0].target_port == "http"
    pdb = _model("PodDisruptionBudget")
    assert pdb.spec.selector.match_labels == labels
    assert pdb.spec.min_available < _model("Deployment").spec.replicas


def _mounted_project(tmp_path: Path) -> Path:
    """The files the pod sees under the ConfigMap's mount path, written to `tmp_path`."""
    deployment = _model("Deployment")
    [volume] = [v for v in deployment.spec.template.spec.volumes if v.config_map]
    assert volume.config_map.name == _model("ConfigMap").metadata.name
    data = _model("ConfigMap").data
    for item in volume.config_map.items:
        path = tmp_path / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data[item.key])
    assert {i.key for i in volume.config_map.items} == set(data)
    [mount] = [m for m in deployment.spec.template.spec.containers[0].volume_mounts
               if m.name == volume.name]
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
    assert env["FACADE_CONFIG"] == f"{mount.mount_path}/curation.yaml"
    return tmp_path / "curation.yaml"


def test_configmap_holds_a_valid_curation_and_the_spec(tmp_path: Path) -> None:
    facade = load(_mounted_project(tmp_path), environ={})
    assert {t.name for t in facade.tools} == {"list_items", "get_item", "get_item_stock",
                                              "get_category"}
    serving = facade.serving
    assert serving.auth is not None and serving.auth.tokens
    service = _model("Service").metadata.name
    assert service in serving.allowed_hosts
    assert f"{service}.*.svc.cluster.local" in serving.allowed_hosts
    for name in ("inventory.yaml", "components/parameters.yaml", "components/schemas.yaml"):
        assert (tmp_path / "specs" / name).read_text() == (ROOT / "specs" / name).read_text()


def test_secret_names_every_credential_and_ships_none(tmp_path: Path) -> None:
    facade = load(_mounted_project(tmp_path), environ={})
    assert facade.serving.auth is not None and facade.backend.auth is not None
    needed = {facade.backend.auth["bearer_env"]}
    needed |= {t.token_env for t in facade.serving.auth.tokens}
    secret = _model("Secret")
    assert set(secret.string_data) == needed
    assert all(value == "" for value in secret.string_data.values())  # fail closed
    [source] = _model("Deployment").spec.template.spec.containers[0].env_from
    assert source.secret_ref.name == secret.metadata.name


def test_termination_grace_covers_prestop_and_the_drain(tmp_path: Path) -> None:
    facade = load(_mounted_project(tmp_path), environ={})
    pod = _model("Deployment").spec.template.spec
    pre_stop = int(pod.containers[0].lifecycle.pre_stop.var_exec.command[1])
    # A drain takes at most shutdown_grace plus one second for stragglers.
    assert pod.termination_grace_period_seconds >= pre_stop + facade.serving.shutdown_grace + 1


def test_readme_walks_through_the_manifests() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploying"):]
    assert "kubectl apply -k deploy/kubernetes" in section
    for name in re.findall(r"^  - (\S+\.yaml)$", (DEPLOY / "kustomization.yaml").read_text(),
                           re.MULTILINE):
        assert name in section, name
