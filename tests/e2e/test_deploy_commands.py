"""Every way the image is started runs a command the image can run.

The Dockerfile's ENTRYPOINT + CMD, each Kubernetes container (in every manifest under
deploy/ and in every rendered kustomization), each compose service: the program must be
`facade` (the entrypoint, or named by a `command:` that replaces it), and the arguments a
subcommand with options that facade's command line accepts (parsed by the click app
itself, values converted and checked, nothing run)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import click
import pytest
import yaml

from facade.cli import main

from .conftest import ROOT
from .kustomize_lite import render
from .test_deploy_docker import instructions

DEPLOY = ROOT / "deploy"


def parse(argv: list[str]) -> click.Context:
    """facade's own parse of `facade ARGV`: raises click.UsageError if it would not run."""
    assert argv, "no subcommand: `facade` alone prints its help and exits 2"
    name, *rest = argv
    if name not in main.commands:
        raise click.UsageError(f"no such command {name!r}")
    return main.commands[name].make_context(name, list(rest))


def _image_command() -> tuple[list[str], list[str]]:
    final = instructions()[max(i for i, (op, _) in enumerate(instructions()) if op == "FROM"):]
    [entrypoint] = [json.loads(arg) for op, arg in final if op == "ENTRYPOINT"]
    [cmd] = [json.loads(arg) for op, arg in final if op == "CMD"]
    return entrypoint, cmd


ENTRYPOINT, CMD = _image_command()


def _run_by(command: list[str] | None, args: list[str] | None) -> list[str]:
    """The process a container starts: Kubernetes and compose semantics alike (a command
    replaces the entrypoint and drops the image's CMD; args alone replace the CMD)."""
    if command is not None:
        return command + (args or [])
    return ENTRYPOINT + (CMD if args is None else args)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", spec)
    return list(pod.get("containers", [])) + list(pod.get("initContainers", []))


def _started() -> dict[str, list[str]]:
    """What each container under deploy/ runs, by where it is declared."""
    started = {"Dockerfile": ENTRYPOINT + CMD}
    for path in sorted(DEPLOY.rglob("*.y*ml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if not isinstance(doc, dict):
                continue
            where = f"{path.relative_to(ROOT)}#{index}"
            for container in _containers(doc) if "kind" in doc else []:
                started[f"{where}:{container['name']}"] = _run_by(
                    container.get("command"), container.get("args"))
            for name, service in (doc.get("services") or {}).items():
                command = service.get("command")
                if isinstance(command, str):
                    command = shlex.split(command)
                entrypoint = service.get("entrypoint")
                if isinstance(entrypoint, str):
                    entrypoint = shlex.split(entrypoint)
                started[f"{where}:{name}"] = _run_by(entrypoint, command)
    for kustomization in sorted(DEPLOY.rglob("kustomization.yaml")):
        for doc in render(kustomization.parent):
            for container in _containers(doc):
                started[f"kustomize {kustomization.parent.relative_to(ROOT)}:"
                        f"{doc['kind']}/{container['name']}"] = _run_by(
                    container.get("command"), container.get("args"))
    return started


STARTED = _started()


def test_every_kind_of_manifest_is_covered() -> None:
    places = " ".join(STARTED)
    assert "Dockerfile" in places
    assert "deploy/kubernetes/base/deployment.yaml" in places
    assert "kustomize deploy/kubernetes/overlays/example" in places
    assert "deploy/compose/compose.yaml" in places


def test_the_entrypoint_is_facade_and_the_cmd_serves_http_on_facade_port() -> None:
    assert ENTRYPOINT == ["facade"]
    context = parse(CMD)
    assert context.info_name == "serve"
    assert context.params["transport"] == "http" and context.params["host"] == "0.0.0.0"
    assert "--port" not in CMD  # from FACADE_PORT, which the HEALTHCHECK probes too


@pytest.mark.parametrize("where", sorted(STARTED))
def test_the_command_is_one_the_image_runs(where: str) -> None:
    program, *argv = STARTED[where]
    assert program == "facade", f"{where} runs {program!r}, which the image does not have"
    parse(argv)


def test_the_parse_refuses_what_the_image_would_refuse() -> None:
    """The check above means something: facade's parser rejects bad commands."""
    for bad in (["serve", "--port", "eighty"], ["serve", "--transport", "sse"], ["serv"],
                ["call"], ["serve", "--hots", "0.0.0.0"]):
        with pytest.raises(click.UsageError):
            parse(bad)
    # What the Kubernetes manifests did before the image had an entrypoint: `serve` was
    # the program, not found in the image.
    assert _run_by(None, ["serve"]) == ["facade", "serve"]
    assert _run_by(["facade"], ["check"]) == ["facade", "check"]
    assert _run_by(["serve"], None)[0] == "serve"


def test_serve_takes_its_port_from_facade_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CMD names no port: FACADE_PORT (the image's ENV, 8000, which it EXPOSEs and its
    HEALTHCHECK probes) sets it, so one variable moves the server and the probe together."""
    final = instructions()
    assert "FACADE_PORT=8000" in " ".join(arg for op, arg in final if op == "ENV")
    assert ("EXPOSE", "8000") in final
    monkeypatch.setenv("FACADE_PORT", "9123")
    assert parse(CMD).params["port"] == 9123
    monkeypatch.delenv("FACADE_PORT")
    assert parse(CMD).params["port"] == 8000
