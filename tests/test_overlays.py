"""Overlays: OpenAPI Overlay 1.0 documents listed in the curation fix a spec its curator
does not own, without editing it. Applied in order at load, to the root document (before a
Swagger 2.0 one is converted); a target matching nothing and a malformed overlay are
errors at the overlay's line:col, every one at once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from facade import load
from facade.cli import main
from facade.errors import CurationError, LoadError
from facade.loading.overlays import read_overlay
from facade.loading.spec import load_spec
from facade.tools import Facade, ToolDefinition

SPEC = """\
openapi: 3.0.3
info: {title: Users, version: "1"}
paths:
  /users/{id}:
    get:
      operationId: getUser
      summary: One user
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
        - {name: debug, in: query, schema: {type: boolean}}
        - {name: trace, in: query, schema: {type: boolean}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/User"}
components:
  schemas:
    User:
      type: object
      required: [id, name]
      properties:
        id: {type: integer}
        name: {type: string}
"""

CURATION = """\
version: 1
spec: spec.yaml
{overlays}
backend: {{base_url: "http://127.0.0.1:9"}}
tools:
  get_user:
    operation: getUser
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the curation's folder, as a curator does: files show as written."""
    monkeypatch.chdir(tmp_path)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def curate(folder: Path, *overlays: str, spec: str = SPEC) -> Path:
    write(folder, "spec.yaml", spec)
    listed = f"overlays: {json.dumps(list(overlays))}" if overlays else ""
    return write(folder, "curation.yaml", CURATION.format(overlays=listed))


def tool(facade: Facade, name: str = "get_user") -> ToolDefinition:
    return next(t for t in facade.tools if t.name == name)


def overlay(*actions: str, head: str = "overlay: 1.0.0\ninfo: {title: fixes, version: '1'}\n"
            ) -> str:
    return head + "actions:\n" + "".join(textwrap.indent(textwrap.dedent(a).lstrip("\n"),
                                                           "  ") for a in actions)


def errors(config: Path) -> list[str]:
    with pytest.raises(LoadError) as info:
        load(config.name)
    return info.value.format().splitlines()


def test_update_merges_into_every_match_and_remove_deletes(tmp_path: Path) -> None:
    write(tmp_path, "fixes.yaml", overlay(
        """
        - target: $.paths['/users/{id}'].get
          description: the spec's summary says nothing
          update: {summary: "One user by id, with their name", x-extra: {a: 1}}
        """,
        """
        - target: $.paths.*.get.parameters[?@.name == 'debug' || @.name == 'trace']
          remove: true
        """))
    facade = load(curate(tmp_path, "fixes.yaml"))
    assert tool(facade).description == "One user by id, with their name"
    assert list(tool(facade).input_schema["properties"]) == ["id"]
    assert facade.sources[-1] == (tmp_path / "fixes.yaml").resolve()


def test_update_appends_to_arrays_and_replaces_primitives(tmp_path: Path) -> None:
    write(tmp_path, "fixes.yaml", overlay(
        """
        - target: $.paths['/users/{id}'].get.parameters
          update: {name: tenant, in: query, required: true, schema: {type: string}}
        - target: $.components.schemas.User
          update: {required: [email], properties: {email: {type: string}, id: {type: string}}}
        """))
    facade = load(curate(tmp_path, "fixes.yaml"))
    assert tool(facade).input_schema["required"] == ["id", "tenant"]
    documented = tool(facade).documented_schema  # what answers are checked against
    assert documented is not None
    assert documented["properties"] == {"id": {"type": "string"}, "name": {"type": "string"},
                                        "email": {"type": "string"}}
    spec = load_spec(tmp_path / "spec.yaml", overlays=[read_overlay(tmp_path / "fixes.yaml")])
    assert spec.data["components"]["schemas"]["User"]["required"] == ["id", "name", "email"]


def test_actions_apply_in_order_and_overlays_in_the_order_listed(tmp_path: Path) -> None:
    # The first overlay removes the summary, then writes one; the second overlay sees the
    # result of the first and overrides it; a later action removing a node an earlier
    # action created removes it.
    write(tmp_path, "first.yaml", overlay(
        """
        - target: $.paths['/users/{id}'].get
          update: {summary: first}
        - target: $.paths['/users/{id}'].get.parameters[?@.name == 'debug']
          update: {description: added by the first overlay}
        """))
    write(tmp_path, "second.yaml", overlay(
        """
        - target: $.paths[?@.get.summary == 'first'].get
          update: {summary: second, description: seen after the first}
        - target: $.paths.*.get.parameters[?@.description == 'added by the first overlay']
          remove: true
        """))
    facade = load(curate(tmp_path, "first.yaml", "second.yaml"))
    assert tool(facade).description == "second\n\nseen after the first"
    assert list(tool(facade).input_schema["properties"]) == ["id", "trace"]
    # In the other order the second overlay's first target matches nothing yet.
    config = curate(tmp_path, "second.yaml", "first.yaml")
    assert errors(config) == [
        "second.yaml:4:13: actions[0].target: target \"$.paths[?@.get.summary == 'first'].get\" "
        "matches nothing in the spec (targets address the spec's root document as written; "
        "`$ref`s are not followed (was the node moved, renamed, or fixed by the spec's "
        "owner?))",
        "second.yaml:6:13: actions[1].target: target \"$.paths.*.get.parameters[?@.description "
        "== 'added by the first overlay']\" matches nothing in the spec (targets address the "
        "spec's root document as written; `$ref`s are not followed (was the node moved, "
        "renamed, or fixed by the spec's owner?))",
    ]


def test_a_target_matching_nothing_is_an_error_at_that_target(tmp_path: Path) -> None:
    write(tmp_path, "fixes.yaml", overlay(
        """
        - target: $.components.schemas.User
          update: {description: fine}
        - description: the spec's owner renamed it
          target: "$.components.schemas.Person.properties.name"
          update: {nullable: true}
        """))
    assert errors(curate(tmp_path, "fixes.yaml")) == [
        "fixes.yaml:7:13: actions[1].target: target '$.components.schemas.Person.properties"
        ".name' matches nothing in the spec (targets address the spec's root document as "
        "written; `$ref`s are not followed (was the node moved, renamed, or fixed by the "
        "spec's owner?))"]


def test_a_malformed_overlay_reports_every_problem_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "fixes.yaml", """
        overlay: 1.1.0
        info: {title: fixes}
        extend: ./spec.yaml
        actions:
          - target: $.paths[
            update: {x: 1}
          - target: $.info
          - target: components.schemas
            remove: "yes"
          - targte: $.info
            update: {x: 1}
          - just a string
        """)
    write(tmp_path, "empty.yaml", "overlay: 1.0.0\ninfo: {title: t, version: 1}\nactions: []\n")
    write(tmp_path, "absent.yaml", "info: {title: t, version: '1'}\n")
    assert errors(curate(tmp_path, "fixes.yaml", "empty.yaml", "absent.yaml", "gone.yaml")) == [
        "curation.yaml:3:55: overlays[3]: overlay file 'gone.yaml' not found (`overlays` are "
        "relative to the curation file)",
        "absent.yaml:1:1: missing required key 'overlay' (start the file with "
        "`overlay: 1.0.0`)",
        "absent.yaml:1:1: missing required key 'actions' (an overlay needs at least one action)",
        "empty.yaml:2:27: info.version: `info.version` must be a string (quote it, e.g. \"1.0\")",
        "empty.yaml:3:10: actions: `actions` must be a non-empty list (an overlay needs at "
        "least one action)",
        "fixes.yaml:1:10: overlay: overlay version '1.1.0' is not supported (facade reads "
        "Overlay 1.0 documents: `overlay: 1.0.0`)",
        "fixes.yaml:2:7: info: missing required key 'info.version'",
        "fixes.yaml:3:1: extend: unknown key 'extend' (did you mean 'extends'?)",
        "fixes.yaml:5:13: actions[0].target: invalid JSONPath '$.paths[': unbalanced brackets "
        "(at offset 8) (targets are RFC 9535 JSONPath, e.g. $.paths['/users/{id}'].get)",
        "fixes.yaml:7:5: actions[1]: the action has neither `update` nor `remove: true` (add "
        "`update: {…}` to merge into the target, or `remove: true` to delete it)",
        "fixes.yaml:8:13: actions[2].target: invalid JSONPath 'components.schemas': expected "
        "'$', found 'c' (at offset 0) (targets are RFC 9535 JSONPath, e.g. "
        "$.paths['/users/{id}'].get)",
        "fixes.yaml:9:13: actions[2].remove: `remove` must be true or false",
        "fixes.yaml:10:5: actions[3].targte: unknown key 'targte' (did you mean 'target'?)",
        "fixes.yaml:10:5: actions[3]: the action has no `target` (a JSONPath, e.g. "
        "$.components.schemas.User)",
        "fixes.yaml:12:5: actions[4]: an action must be a mapping with `target` and `update` "
        "or `remove`",
    ]


def test_the_cli_prints_overlay_problems_without_a_traceback(tmp_path: Path) -> None:
    write(tmp_path, "fixes.yaml", overlay("- target: $.nothing\n  remove: true\n"))
    config = curate(tmp_path, "fixes.yaml")
    result = CliRunner().invoke(main, ["check", "--config", str(config.name)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.stderr.startswith(
        "fixes.yaml:4:13: actions[0].target: target '$.nothing' matches nothing in the spec")


def test_an_update_that_cannot_merge_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "fixes.yaml", overlay(
        """
        - target: $.info.title
          update: {x: 1}
        - target: $.info
          update: [not, a, mapping]
        - target: $
          remove: true
        """))
    assert errors(curate(tmp_path, "fixes.yaml")) == [
        "fixes.yaml:4:13: actions[0].target: target selects a str at $['info']['title']; "
        "`update` needs an object or an array (target the object that holds it and update "
        "that key)",
        "fixes.yaml:7:13: actions[1].update: `update` must be a mapping to merge into the "
        "object at $['info']",
        "fixes.yaml:8:13: actions[2].target: `remove` cannot delete the whole document "
        "(target the nodes to delete)",
    ]


def test_remove_also_deletes_a_plain_value_and_extensions_are_allowed(tmp_path: Path) -> None:
    write(tmp_path, "fixes.yaml", """
        overlay: 1.0.2
        info: {title: fixes, version: "1", x-owner: curators}
        extends: ./spec.yaml
        x-ticket: API-42
        actions:
          - target: $.components.schemas.User.properties.name.type
            remove: true
            x-reason: the backend sends numbers too
        """)
    output = tool(load(curate(tmp_path, "fixes.yaml"))).output_schema
    assert output is not None and output["properties"]["name"] == {}


def test_a_curation_without_overlays_never_imports_the_jsonpath_engine(
        tmp_path: Path) -> None:
    config = curate(tmp_path)
    code = ("import sys, json, facade; facade.load(sys.argv[1]); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True,
                         text=True, check=True).stdout
    assert "facade" in json.loads(out) and "jsonpath_rfc9535" not in json.loads(out)
