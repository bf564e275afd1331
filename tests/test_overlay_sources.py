"""Overlays everywhere a spec is: Swagger 2.0 (patched before conversion), each API of a
multi-API curation, `facade build` artifacts (keyed by the overlays' digests), `facade lock`
/ `diff` / `check` (an overlay change is drift) and `serve --watch` (an overlay edit
reloads)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastmcp import Client
from test_overlays import SPEC, curate, errors, overlay, tool, write

from facade import load
from facade.cli import main
from facade.loading.artifact import build, load_fast
from facade.serve.reload import _snapshot
from facade.serve.server import build_server

SWAGGER = """\
swagger: "2.0"
info: {title: Users, version: "1"}
host: 127.0.0.1:9
paths:
  /users/{id}:
    get:
      operationId: getUser
      produces: [application/json]
      parameters:
        - {name: id, in: path, required: true, type: integer}
      responses:
        "200":
          description: ok
          schema: {$ref: "#/definitions/User"}
definitions:
  User:
    type: object
    properties:
      id: {type: integer}
      name: {type: string}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_a_swagger_2_spec_is_patched_as_written_before_conversion(tmp_path: Path) -> None:
    write(tmp_path, "fixes.yaml", overlay(
        """
        - target: $.definitions.User.properties.name
          update: {x-nullable: true, description: null when the user hid it}
        """))
    facade = load(curate(tmp_path, "fixes.yaml", spec=SWAGGER).name)
    documented, output = tool(facade).documented_schema, tool(facade).output_schema
    assert documented is not None and output is not None
    assert documented["properties"]["name"]["type"] == ["string", "null"]
    assert output["properties"]["name"]["description"] == "null when the user hid it"
    write(tmp_path, "fixes.yaml", overlay(
        """
        - target: $.components.schemas.User
          update: {description: written against the 3.0 form}
        """))
    assert errors(curate(tmp_path, "fixes.yaml", spec=SWAGGER)) == [
        "fixes.yaml:4:13: actions[0].target: target '$.components.schemas.User' matches "
        "nothing in the spec (this is a Swagger 2.0 document, patched before its conversion: "
        "say `definitions`, `parameters` and `responses`, not `components`)"]


MULTI = """\
version: 1
apis:
  first:
    namespace: one
    spec: spec.yaml
    overlays: [fixes.yaml]
    backend: {base_url: "http://127.0.0.1:9"}
    tools: {get_user: {operation: getUser}}
  second:
    namespace: two
    spec: spec.yaml
    backend: {base_url: "http://127.0.0.1:9"}
    tools: {get_user: {operation: getUser}}
"""


def test_each_api_of_a_multi_api_curation_has_its_own_overlays(tmp_path: Path) -> None:
    write(tmp_path, "spec.yaml", SPEC)
    write(tmp_path, "fixes.yaml", overlay(
        "- target: $.paths['/users/{id}'].get\n  update: {summary: patched}\n"))
    config = write(tmp_path, "curation.yaml", MULTI)
    facade = load(config.name)
    assert tool(facade, "one_get_user").description == "patched"
    assert tool(facade, "two_get_user").description == "One user"
    assert (tmp_path / "fixes.yaml").resolve() in facade.sources
    write(tmp_path, "curation.yaml", MULTI.replace("fixes.yaml", "gone.yaml"))
    assert errors(config) == [
        "curation.yaml:6:16: apis.first.overlays[0]: overlay file 'gone.yaml' not found "
        "(`overlays` are relative to the curation file)"]
    write(tmp_path, "curation.yaml", "overlays: [fixes.yaml]\n" + MULTI)
    assert errors(config) == [
        "curation.yaml:1:1: overlays: 'overlays' at the top level cannot be combined with "
        "`apis:` (move it under apis.<name>, or remove `apis:`)"]


def test_a_changed_overlay_makes_the_artifact_stale(tmp_path: Path) -> None:
    fixes = write(tmp_path, "fixes.yaml", overlay(
        "- target: $.paths['/users/{id}'].get\n  update: {summary: before}\n"))
    config = curate(tmp_path, "fixes.yaml")
    built = build(config, tmp_path / "out.json", environ={})
    assert built.files == 3  # the curation, the spec and the overlay
    stored = json.loads(built.path.read_text())
    assert [o["path"] for o in stored["overlays"]] == ["fixes.yaml"]
    facade, why = load_fast(config, artifact=built.path, environ={})
    assert why is None and tool(facade).description == "before"
    assert (tmp_path / "fixes.yaml") in facade.sources  # watched when started from it
    fixes.write_text(fixes.read_text().replace("before", "after"))
    facade, why = load_fast(config, artifact=built.path, environ={})
    assert why == (f"facade: not using {built.path}: overlay fixes.yaml changed since it "
                   "was built; loading the spec (run `facade build` to refresh it)")
    assert tool(facade).description == "after"
    fixes.unlink()
    with pytest.raises(Exception, match="overlay file 'fixes.yaml' not found"):
        load_fast(config, artifact=built.path, environ={})


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--config", "curation.yaml"])
    return result.exit_code, result.stdout + result.stderr


def test_lock_digests_overlays_and_an_overlay_change_is_drift(tmp_path: Path) -> None:
    fixes = write(tmp_path, "fixes.yaml", overlay(
        "- target: $.paths['/users/{id}'].get.parameters[?@.name == 'debug']\n"
        "  update: {description: verbose answer}\n"))
    curate(tmp_path, "fixes.yaml")
    code, out = run("lock")
    assert code == 0, out
    lock = json.loads((tmp_path / "curation.lock.json").read_text())
    assert list(lock["spec"]["overlays"]) == ["fixes.yaml"]
    assert run("diff") == (0, "spec.yaml: no drift since curation.lock.json\n")
    # The overlay now retypes a parameter the curated tool takes: breaking drift, seen by
    # `diff` and by `check` (whose shortcut compares the overlays' digests too).
    fixes.write_text(fixes.read_text().replace("{description: verbose answer}",
                                               "{schema: {type: string}}"))
    code, out = run("diff")
    assert code == 1
    assert out.splitlines()[0] == ("curation.yaml:7:16: tools.get_user.operation: query "
                                   "parameter 'debug' changed type: boolean → string")
    code, out = run("check")
    assert code != 0 and "query parameter 'debug' changed type: boolean → string" in out
    assert run("lock")[0] == 0
    assert run("diff") == (0, "spec.yaml: no drift since curation.lock.json\n")
    # An overlay that no longer applies to the spec is a load error, not a comparison.
    fixes.write_text(fixes.read_text().replace("'debug'", "'verbose'"))
    code, out = run("diff")
    assert code == 2 and "fixes.yaml:4:13: actions[0].target: target" in out


async def test_watch_reloads_on_an_overlay_edit(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    fixes = write(tmp_path, "fixes.yaml", overlay(
        "- target: $.paths['/users/{id}'].get\n  update: {summary: before}\n"))
    config = curate(tmp_path, "fixes.yaml")
    facade = load(config)
    server = build_server(facade, environ={}, watch=config)
    reloader = server.facade_reloader  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO, logger="facade.reload")
    async with reloader.running(), Client(server) as client:
        assert (tmp_path / "fixes.yaml").resolve() in reloader._files
        fixes.write_text(fixes.read_text().replace("before", "after"))
        assert _snapshot(reloader._files) != reloader._seen  # what the poller compares
        assert await reloader.reload(), caplog.text
        assert [t.description for t in await client.list_tools()] == ["after"]
        fixes.write_text(fixes.read_text().replace("'/users/{id}'", "'/people/{id}'"))
        assert not await reloader.reload()
        assert [t.description for t in await client.list_tools()] == ["after"]
    said = [r.getMessage() for r in caplog.records if r.name == "facade.reload"]
    assert "fixes.yaml:4:13: actions[0].target: target" in said[-1]

