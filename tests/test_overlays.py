"""Overlays: OpenAPI Overlay 1.0 documents listed in the curation fix a spec its curator
does not own, without editing it. Applied in order at load, to the root document (before a
Swagger 2.0 one is converted); a target matching nothing and a malformed overlay are
errors at the overlay's line:col, every one at once."""

from __future__ import annotations

import json
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
        load(config)
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
    output = tool(facade).output_schema
    assert output is not None
    assert output["properties"] == {"id": {"type": "string"}, "name": {"type": "string"},
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
