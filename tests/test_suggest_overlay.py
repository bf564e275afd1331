"""`facade test` reports how recorded backend answers deviate from the documented response
schema, and `--suggest-overlay` writes the overlay that fixes the spec; added to the
curation, the recorded answer matches (the round trip), for OpenAPI 3.0, 3.1 and Swagger
2.0. The backend is a real HTTP server on 127.0.0.1; the curator's commands run through
click's CliRunner."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from facade.cli import main
from facade.curate.fixtures import read_fixture
from facade.loading.overlays import read_overlay

ANSWER = {"id": 7, "name": None, "age": "41", "email": "nope", "role": "owner",
          "nickname": "al"}  # and no `team`, which is required

USER = """\
      type: object
      required: [id, name, team]
      properties:
        id: {type: integer}
        name: {type: string}
        age: {type: integer}
        email: {type: string, format: email}
        role: {type: string, enum: [admin, member]}
        team: {type: string}
"""
OPENAPI = """\
openapi: {version}
info: {{title: Users, version: "1"}}
paths:
  /users/{{id}}:
    get:
      operationId: getUser
      parameters: [{{name: id, in: path, required: true, schema: {{type: integer}}}}]
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {{$ref: "#/components/schemas/User"}}
components:
  schemas:
    User:
{user}"""
SWAGGER = """\
swagger: "2.0"
info: {{title: Users, version: "1"}}
paths:
  /users/{{id}}:
    get:
      operationId: getUser
      produces: [application/json]
      parameters: [{{name: id, in: path, required: true, type: integer}}]
      responses:
        "200":
          description: ok
          schema: {{$ref: "#/definitions/User"}}
definitions:
  User:
{user}"""
SPECS = {
    "3.0": OPENAPI.format(version="3.0.3", user=USER),
    "3.1": OPENAPI.format(version="3.1.0", user=USER),
    "2.0": SWAGGER.format(user=USER.replace("      ", "    ", -1)),
}
REPORT = [
    "fixtures/get_user/ada.json: the recorded answer deviates from the documented response "
    "schema in 6 place(s):",
    "  team: required property is absent (missing_required)",
    "  name: null where string is documented (null)",
    "  age: string where integer is documented (type)",
    "  email: string that is not a valid email (format)",
    "  role: string that is not one of the 2 listed values (enum)",
    "  nickname: string property the schema does not document (extra_property)",
]


class _Backend(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def facade(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--config", "curation.yaml"])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


def curate(folder: Path, spec: str, backend: str, overlays: list[str]) -> None:
    (folder / "spec.yaml").write_text(spec)
    (folder / "curation.yaml").write_text(
        f"version: 1\nspec: spec.yaml\noverlays: {json.dumps(overlays)}\n"
        f"backend: {{base_url: '{backend}'}}\n"
        # strict: the documented schema is enforced, so a deviation is a failing result
        # until the overlay documents what the backend sends
        "tools: {get_user: {operation: getUser, response: {validate: strict}}}\n")


@pytest.mark.parametrize("version", list(SPECS), ids=[f"openapi {v}" for v in SPECS])
def test_suggested_overlay_makes_the_recorded_answer_match(
        version: str, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    curate(tmp_path, SPECS[version], backend, [])
    _, _, err = facade("call", "get_user", "--args", '{"id": 7}', "--record", "ada")
    assert "recorded fixtures/get_user/ada.json (status 200)" in err
    code, out, err = facade("test", "--suggest-overlay", "fixes.yaml")
    assert code == 0, out + err
    assert out.splitlines()[1:] == [*REPORT, "1 fixture(s): 1 ok"]
    assert "owner" not in out and "nope" not in out and "41" not in out  # never the values
    assert "wrote fixes.yaml" in err
    written = yaml.safe_load((tmp_path / "fixes.yaml").read_text())
    component = "$.definitions.User" if version == "2.0" else "$.components.schemas.User"
    assert written["actions"] and all(a["target"].startswith(component)
                                      for a in written["actions"])
    assert read_overlay(tmp_path / "fixes.yaml").actions  # a valid Overlay 1.0 document

    curate(tmp_path, SPECS[version], backend, ["fixes.yaml"])
    code, out, err = facade("test", "--update")
    assert code == 0, out + err
    assert out.splitlines() == ["fixtures/get_user/ada.json: golden result updated",
                                "1 fixture(s): 0 ok, 1 updated"]
    # The tool now returns the answer: facade's own output validation agrees.
    result = read_fixture(tmp_path / "fixtures/get_user/ada.json").result
    assert result["structured"]["name"] is None and result["structured"]["nickname"] == "al"
    assert facade("test") == (0, "fixtures/get_user/ada.json: ok\n1 fixture(s): 1 ok\n", "")


def test_the_3_0_overlay_fixes_each_schema_where_it_is_defined(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    curate(tmp_path, SPECS["3.0"], backend, [])
    facade("call", "get_user", "--args", '{"id": 7}', "--record", "ada")
    assert facade("test", "--suggest-overlay", "fixes.yaml")[0] == 0
    actions = yaml.safe_load((tmp_path / "fixes.yaml").read_text())["actions"]
    user = "$.components.schemas.User"
    assert [(a["target"], a.get("update"), a.get("remove")) for a in actions] == [
        (f"{user}.required", None, True),
        (user, {"required": ["id", "name"], "properties": {"nickname": {"type": "string"}}},
         None),
        (f"{user}.properties.name", {"nullable": True}, None),
        # Overlay 1.0 cannot remove a plain value: the schema is removed and set again.
        (f"{user}.properties.age", None, True),
        (f"{user}.properties", {"age": {}}, None),
        (f"{user}.properties.email", None, True),
        (f"{user}.properties", {"email": {"type": "string"}}, None),
        (f"{user}.properties.role", {"enum": ["owner"]}, None),
    ]
    assert actions[2]["description"] == "recorded answers have null at name"
    text = (tmp_path / "fixes.yaml").read_text()
    assert text.startswith("# Written by `facade test --suggest-overlay`")


def test_no_deviation_writes_no_overlay(backend: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loose = SPECS["3.1"].replace("required: [id, name, team]", "additionalProperties: true")
    for name in ("name", "age", "email", "role"):
        loose = loose.replace(f"        {name}: {{", f"        {name}x: {{")
    curate(tmp_path, loose, backend, [])
    facade("call", "get_user", "--args", '{"id": 7}', "--record", "ada")
    code, out, err = facade("test", "--suggest-overlay", "fixes.yaml")
    assert (code, out.splitlines()[-1]) == (0, "1 fixture(s): 1 ok")
    assert "deviates" not in out
    assert err == "no deviations from the documented response schemas: no overlay written\n"
    assert not (tmp_path / "fixes.yaml").exists()


def test_each_api_gets_its_own_overlay_file(backend: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPECS["3.1"])
    (tmp_path / "curation.yaml").write_text(
        f"version: 1\napis:\n  users:\n    namespace: u\n    spec: spec.yaml\n"
        f"    backend: {{base_url: '{backend}'}}\n"
        f"    tools: {{get_user: {{operation: getUser}}}}\n")
    facade("call", "u_get_user", "--args", '{"id": 7}', "--record", "ada")
    code, out, err = facade("test", "--suggest-overlay", "fixes.yaml")
    assert code == 0, out + err
    assert out.splitlines()[1] == REPORT[0].replace("get_user", "u_get_user")
    assert "wrote fixes.users.yaml (7 action(s))" in err
    text = (tmp_path / "curation.yaml").read_text()
    (tmp_path / "curation.yaml").write_text(text.replace(
        "    spec: spec.yaml\n", "    spec: spec.yaml\n    overlays: [fixes.users.yaml]\n"))
    code, out, err = facade("test", "--update")
    assert code == 0 and "deviates" not in out, out + err


def test_a_schema_in_another_file_is_reported_not_patched(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    split = SPECS["3.0"].split("components:")[0].replace(
        "#/components/schemas/User", "user.yaml")
    (tmp_path / "user.yaml").write_text(USER.replace("      ", "", -1))
    curate(tmp_path, split, backend, [])
    facade("call", "get_user", "--args", '{"id": 7}', "--record", "ada")
    code, out, err = facade("test", "--suggest-overlay", "fixes.yaml")
    assert code == 0 and out.splitlines()[1:] == [*REPORT, "1 fixture(s): 1 ok"]
    assert err.splitlines() == [
        f"cannot suggest a fix for {field}: its schema is in user.yaml, which an overlay "
        "cannot reach (targets address the root document)"
        for field in ("team", "name", "age", "email", "role", "nickname")]
    assert not (tmp_path / "fixes.yaml").exists()


def test_an_inline_response_schema_is_fixed_in_place(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    inline = SPECS["3.0"].split("components:")[0].replace(
        '              schema: {$ref: "#/components/schemas/User"}\n',
        "              schema:\n" + USER.replace("      ", "                ", -1))
    curate(tmp_path, inline, backend, [])
    facade("call", "get_user", "--args", '{"id": 7}', "--record", "ada")
    assert facade("test", "--suggest-overlay", "fixes.yaml")[0] == 0
    actions = yaml.safe_load((tmp_path / "fixes.yaml").read_text())["actions"]
    here = "$.paths['/users/{id}'].get.responses['200'].content['application/json'].schema"
    assert [a["target"] for a in actions][:3] == [f"{here}.required", here,
                                                  f"{here}.properties.name"]
    curate(tmp_path, inline, backend, ["fixes.yaml"])
    code, out, err = facade("test", "--update")
    assert code == 0 and "deviates" not in out, out + err
