"""A small kustomize, for the tests: renders deploy/kubernetes offline, in Python.

kustomize itself is a Go program (or `kubectl kustomize`), and neither PyPI, npm nor
Debian ships it, so the tests render the kustomizations with this. It implements only the
subset deploy/kubernetes uses, as kustomize v5 does it, and refuses anything else with an
error rather than rendering it differently:

- `resources`: YAML files, and directories holding a kustomization (rendered first);
- `configMapGenerator` (`files`, as `path` or `key=path`; `behavior: create` only) with
  `generatorOptions.labels` and kustomize's content-hash name suffix, and the generated
  names written into the workloads that refer to them (volumes, projected volumes,
  `envFrom`, `env[].valueFrom`);
- `namespace` (also renames a Namespace object, as kustomize does);
- `images` (`newName`, `newTag`, `digest`);
- `patches` in JSON 6902 form (`add`, `replace`, `remove`) with a `target` by kind and name.

Where `kubectl` or `kustomize` is on PATH, tests/e2e/test_deploy_kubernetes.py checks that
this renders exactly what the real one does.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

_KNOWN_KEYS = {"apiVersion", "kind", "resources", "namespace", "generatorOptions",
               "configMapGenerator", "images", "patches"}
_CLUSTER_SCOPED = {"Namespace"}
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class Unsupported(ValueError):
    """The kustomization uses something this renderer does not implement."""


def config_map_hash(data: dict[str, str]) -> str:
    """kustomize's name suffix for a generated ConfigMap: the first 10 hex digits of the
    SHA-256 of its JSON encoding (as Go's encoding/json writes it: sorted keys, HTML
    characters escaped), with 0, 1, 3, a and e swapped for letters that spell no words."""
    encoded = json.dumps({"kind": "ConfigMap", "name": "", "data": data}, sort_keys=True,
                         separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        encoded = encoded.replace(char, escape)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def render(directory: Path) -> list[Doc]:
    """Every object the kustomization in `directory` produces."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _KNOWN_KEYS
    if unknown:
        raise Unsupported(f"{directory}: not implemented here: {sorted(unknown)}")
    docs: list[Doc] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    renamed: dict[str, str] = {}
    options = kustomization.get("generatorOptions", {})
    if set(options) - {"labels"}:
        raise Unsupported(f"generatorOptions: only labels: {sorted(options)}")
    for generator in kustomization.get("configMapGenerator", []):
        if set(generator) - {"name", "files", "behavior"} or \
                generator.get("behavior", "create") != "create":
            raise Unsupported(f"configMapGenerator: only name, files: {generator}")
        data = {}
        for item in generator["files"]:
            key, _, source = item.rpartition("=")
            data[key or Path(source).name] = (directory / source).read_text()
        name = f"{generator['name']}-{config_map_hash(data)}"
        renamed[generator["name"]] = name
        metadata: Doc = {"name": name}
        if "labels" in options:
            metadata["labels"] = dict(options["labels"])
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
                     "data": data})
    for patch in kustomization.get("patches", []):
        _apply_patch(docs, patch, directory)
    if "namespace" in kustomization:
        for doc in docs:
            if doc["kind"] in _CLUSTER_SCOPED:
                if doc["kind"] == "Namespace":
                    doc["metadata"]["name"] = kustomization["namespace"]
            else:
                doc["metadata"]["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        for container in _containers(docs):
            _set_image(container, image)
    for container in _containers(docs):
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref and ref["name"] in renamed:
                ref["name"] = renamed[ref["name"]]
        for var in container.get("env", []):
            ref = var.get("valueFrom", {}).get("configMapKeyRef")
            if ref and ref["name"] in renamed:
                ref["name"] = renamed[ref["name"]]
    for pod in _pod_specs(docs):
        for volume in pod.get("volumes", []):
            refs = [volume.get("configMap")] + [
                source.get("configMap") for source in
                volume.get("projected", {}).get("sources", [])]
            for ref in refs:
                if ref and ref["name"] in renamed:
                    ref["name"] = renamed[ref["name"]]
    return docs


def _pod_specs(docs: list[Doc]) -> list[Doc]:
    return [d["spec"]["template"]["spec"] for d in docs if d["kind"] in _WORKLOADS]


def _containers(docs: list[Doc]) -> list[Doc]:
    return [c for pod in _pod_specs(docs)
            for c in pod.get("containers", []) + pod.get("initContainers", [])]


def _set_image(container: Doc, image: Doc) -> None:
    if set(image) - {"name", "newName", "newTag", "digest"}:
        raise Unsupported(f"images: {image}")
    reference = container["image"]
    name, at, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    if name != image["name"]:
        return
    name = image.get("newName", name)
    if "digest" in image:
        container["image"] = f"{name}@{image['digest']}"
    elif "newTag" in image:
        container["image"] = f"{name}:{image['newTag']}"
    else:
        container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if at else "")


def _apply_patch(docs: list[Doc], patch: Doc, directory: Path) -> None:
    if set(patch) - {"target", "patch", "path"} or set(patch.get("target", {})) - {
            "kind", "name"}:
        raise Unsupported(f"patches: only a target by kind and name: {patch}")
    text = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text()
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise Unsupported("patches: only JSON 6902 patches (a list of operations)")
    target = patch["target"]
    matched = [d for d in docs if d["kind"] == target["kind"]
               and d["metadata"]["name"] == target["name"]]
    if not matched:
        raise ValueError(f"patch target {target} matches nothing")
    for doc in matched:
        for operation in operations:
            _json_patch(doc, operation)


def _json_patch(doc: Doc, operation: Doc) -> None:
    op = operation["op"]
    if op not in ("add", "replace", "remove"):
        raise Unsupported(f"JSON patch op {op!r}")
    *parents, last = [p.replace("~1", "/").replace("~0", "~")
                      for p in operation["path"].split("/")[1:]]
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op == "add":
            node.insert(index, copy.deepcopy(operation["value"]))
        elif op == "replace":
            node[index] = copy.deepcopy(operation["value"])
        else:
            del node[index]
    else:
        if op != "add" and last not in node:
            raise ValueError(f"JSON patch {op} of a missing member: {operation['path']}")
        if op == "remove":
            del node[last]
        else:
            node[last] = copy.deepcopy(operation["value"])
