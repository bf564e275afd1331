"""`facade init` as a curator meets it: a starter that names every operation after its
operationId, even in a spec split over many files, and shows under each its parameters and
the fields of its answer, so that tools can be chosen, and `params` and `response.include`
written, without opening the spec. Whatever it lists, `facade check` accepts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from facade.cli import main
from facade.tools import tool_name_for

from conftest import SPECS_CORPUS

ROOT = Path(__file__).resolve().parent.parent
SPLIT = ROOT / "tests" / "data" / "split-spec" / "openapi.yaml"
SWAGGER2 = ROOT / "tests" / "data" / "swagger2" / "petstore" / "swagger.yaml"
DIGITALOCEAN = SPECS_CORPUS / "digitalocean__openapi@62327d0/specification/DigitalOcean-public.v2.yaml"
GITHUB = SPECS_CORPUS / "WillAbides__octo-go@fa158bd/api.github.com.json"
STRIPE = SPECS_CORPUS / "stripe__openapi@e0123a3/openapi/spec3.json"
NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"FACADE_ARTIFACT": "off"})
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


@dataclass
class Block:
    """One commented-out tool of a starter, as a curator reads it."""

    name: str
    start: int  # index of its first line
    end: int  # index past its last line
    key: str = ""
    description: str | None = None
    notes: list[str] = field(default_factory=list)  # the `#   # ` lines, without that

    @property
    def params(self) -> dict[str, str]:
        """Listed parameters: name → the rest of the line."""
        found, inside = {}, False
        for note in self.notes:
            if not note.startswith(" "):
                inside = note == "params:"
            elif inside and not note.strip().startswith("…"):
                name, _, rest = note.strip().partition(": ")
                found[name] = rest
        return found

    @property
    def fields(self) -> dict[str, str]:
        """Listed response fields: path → type."""
        found, inside = {}, False
        for note in self.notes:
            if not note.startswith(" "):
                inside = note.startswith("response (") and "response.include" in note
            elif inside and not note.strip().startswith("…"):
                path, _, label = note.strip().partition(": ")
                found[path] = label
        return found


def blocks(text: str) -> dict[str, Block]:
    lines = text.splitlines()
    found: dict[str, Block] = {}
    current: Block | None = None
    for i, line in enumerate(lines):
        if i <= lines.index("tools:"):
            continue
        header = re.match(r"^  # ([a-z0-9_]+):", line)
        if header:
            current = found.setdefault(header[1], Block(header[1], i, i + 1))
        elif current is not None and line.startswith("  #   "):
            body = line.removeprefix("  #   ")
            if body.startswith("operation: "):
                current.key = json.loads(body.removeprefix("operation: "))
            elif body.startswith("description: "):
                current.description = json.loads(body.removeprefix("description: "))
            else:
                assert body.startswith("# "), line
                current.notes.append(body.removeprefix("# "))
        else:
            current = None
            continue
        current.end = i + 1
    return found


def init(spec: Path, out: Path) -> str:
    code, _, err = run("init", "--spec", str(spec), "-o", str(out))
    assert code == 0, err
    return out.read_text()


def choose(out: Path, text: str, names: list[str], shaped: bool = True) -> None:
    """Uncomment `names` as an editor's toggle does (one `# ` less on each line of the
    block), and (if `shaped`) give each a `params` entry for every parameter the starter
    lists and a `response.include` of every field it lists."""
    lines = text.splitlines()
    found = blocks(text)
    for name in sorted(names, key=lambda n: -found[n].start):
        block = found[name]
        chosen = [line.replace("  # ", "  ", 1) for line in lines[block.start:block.end]]
        if block.params and shaped:
            chosen.append("    params: " + json.dumps(
                {p: {"description": "Chosen from the starter."} for p in block.params}))
        if block.fields and shaped:
            chosen.append("    response: " + json.dumps({"include": list(block.fields)}))
        lines[block.start:block.end] = chosen
    out.write_text("\n".join(lines) + "\n")


def check(out: Path, count: int) -> None:
    code, stdout, err = run("check", "--config", str(out))
    assert code == 0, err
    assert f"ok, {count} tool(s)" in stdout


def test_a_split_spec_is_named_and_described_from_its_referenced_files(tmp_path: Path) -> None:
    found = blocks(init(SPLIT, tmp_path / "curation.yaml"))
    assert [(b.name, b.key) for b in found.values()] == [
        ("retrieve_file", "retrieveFile"),
        ("get_folder", "getFolder"),
        ("get_legacy", "GET /legacy"),  # no operationId: named from the path
        ("get_legacy_2", "GET /legacy/{id}"),  # …and told apart, in the starter's order
        ("list_models", "listModels"),
        ("retrieve_model", "retrieveModel"),  # through a path item in a file of its own
        ("repos_get_content", "repos/get-content"),
        ("delete_file", "deleteFile"),
    ]
    assert found["list_models"].description == "Lists the models available to the caller."
    assert found["get_legacy"].description == "The old listing, without an operationId"
    assert found["get_legacy_2"].description is None
    # The operation's own label is shown where `operation:` names it by its operationId.
    assert found["list_models"].notes[0] == "GET /models"
    assert found["get_legacy"].notes[0] == "params: none"


def test_parameters_are_listed_with_in_type_required_and_a_first_line(tmp_path: Path) -> None:
    found = blocks(init(SPLIT, tmp_path / "curation.yaml"))
    assert found["list_models"].params == {
        "limit": "query, integer — How many models to return, at most.",
        "after": "query, string — A cursor, from the `last_id` of the previous page."}
    # A parameter of the path item (in its own file), `$ref`'d into a shared file.
    assert found["retrieve_model"].params == {
        "model": "path, string, required — The ID of the model, e.g. `gpt-4o`."}
    # Only the first line of a description, after the blank ones.
    assert found["retrieve_file"].params["X-Request-Id"] == \
        "header, string — Echoed back in the answer's headers."
    assert found["repos_get_content"].params["path"] == \
        "path, string, required — A path in the repository."


def test_response_fields_are_listed_two_levels_deep(tmp_path: Path) -> None:
    found = blocks(init(SPLIT, tmp_path / "curation.yaml"))
    assert found["list_models"].fields == {
        "object": "string (one of: list)",
        "data": "array of object",
        "data[].id": "string",
        "data[].object": "string (one of: model)",
        "data[].created": "integer",
        "data[].owned_by": "string",
        "data[].permissions": "array of object",  # a third level is not expanded
        "last_id": "string",
        "has_more": "boolean",
    }
    # allOf merged; a oneOf of objects read as one object.
    assert found["retrieve_file"].fields == {
        "id": "string", "object": "string", "created_at": "integer", "filename": "string",
        "bytes": "integer", "purpose": "string (one of: fine-tune, assistants, batch)",
        "status_details": "object", "status_details.processed_at": "integer",
        "status_details.error": "string"}
    # An anyOf of an object and an array of it: the object's fields.
    content = found["repos_get_content"]
    assert "response (200, application/json): object | array of object; fields for " \
        "response.include:" in content.notes
    assert content.fields["_links.html"] == "string"
    # A cycle is named, and stops at two levels.
    assert found["get_folder"].fields == {
        "id": "integer", "name": "string",
        "parent": "object (recursive)", "parent.id": "integer", "parent.name": "string",
        "parent.parent": "object (recursive)",
        "parent.children": "array of object (recursive)",
        "children": "array of object (recursive)", "children[].id": "integer",
        "children[].name": "string", "children[].parent": "object (recursive)",
        "children[].children": "array of object (recursive)"}
    assert found["get_legacy_2"].notes == ["params:", "  id: path, string, required",
                                           "response (204): no body"]
    # Five fields at the second level, then a count.
    model = found["retrieve_model"]
    assert [f for f in model.fields if f.startswith("permissions[].")] == [
        "permissions[].id", "permissions[].allow_view", "permissions[].allow_fine_tuning",
        "permissions[].allow_sampling", "permissions[].allow_logprobs"]
    assert "    … 2 more in permissions[]" in model.notes


def test_what_the_starter_lists_is_what_check_accepts(tmp_path: Path) -> None:
    out = tmp_path / "curation.yaml"
    text = init(SPLIT, out)
    chosen = ["list_models", "retrieve_file", "retrieve_model", "repos_get_content",
              "get_folder"]
    choose(out, text, chosen)
    check(out, len(chosen))
    code, stdout, err = run("tools", "--json", "--config", str(out))
    assert code == 0, err
    tools = {t["name"]: t for t in json.loads(stdout)["tools"]}
    assert set(tools["list_models"]["inputSchema"]["properties"]) == {"limit", "after"}
    assert tools["list_models"]["description"].startswith(
        "Lists the models available to the caller.")
    owned_by = tools["list_models"]["outputSchema"]["properties"]["data"]["items"]
    assert "owned_by" in json.dumps(owned_by)


def test_a_write_operation_is_marked_and_stays_out_of_a_read_only_check(tmp_path: Path) -> None:
    out = tmp_path / "curation.yaml"
    text = init(SPLIT, out)
    assert "  # delete_file:  # writes: needs read_only: false\n" in text
    choose(out, text, ["delete_file"])
    code, _, err = run("check", "--config", str(out))
    assert code == 1 and "DELETE /files/{file_id} is not read-only" in err


def test_swagger_2_is_listed_as_converted(tmp_path: Path) -> None:
    out = tmp_path / "curation.yaml"
    text = init(SWAGGER2, out)
    found = blocks(text)
    assert found["find_pets"].params["status"] == \
        "query, array of string (one of: available, pending, sold) — Status values to filter by."
    assert found["find_pets"].fields["[].owner.email"] == "string"
    # What the conversion cannot express is said where the operation is.
    assert found["list_photos"].notes[1].startswith("cannot be read: collectionFormat 'tsv'")
    choose(out, text, ["find_pets", "get_pet", "get_owner"])
    check(out, 3)


def test_cycles_and_bounds(tmp_path: Path) -> None:
    """allOf cycles, an array of itself, a oneOf through itself; and the caps on
    parameters and fields, with HTML taken out of descriptions."""
    wide = {f"f{i:02d}": {"type": "object", "properties": {
        f"g{j}": {"type": "string"} for j in range(7)}} for i in range(14)}
    schemas = {
        "A": {"allOf": [{"$ref": "#/components/schemas/B"}, {"type": "object", "properties": {
            "a": {"type": ["string", "null"]}, "self": {"$ref": "#/components/schemas/A"},
            "either": {"oneOf": [{"$ref": "#/components/schemas/A"}, {"type": "string"}]}}}]},
        "B": {"allOf": [{"$ref": "#/components/schemas/A"},
                        {"type": "object", "properties": {"b": {"type": "integer"}}}]},
        "Nest": {"type": "array", "items": {"$ref": "#/components/schemas/Nest"}},
        "Wide": {"type": "object", "properties": wide},
    }

    def get(op_id: str, schema: str, **extra: object) -> dict[str, object]:
        return {"get": {"operationId": op_id, **extra, "responses": {"200": {
            "description": "ok", "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{schema}"}}}}}}}

    params = [{"name": f"q{i:02d}", "in": "query", "schema": {"type": "string"},
               "description": "<p>Filter <code>number</code> %d.</p>" % i} for i in range(18)]
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps({
        "openapi": "3.1.0", "info": {"title": "t", "version": "1"},
        "paths": {"/a": get("getA", "A"), "/nest": get("getNest", "Nest"),
                  "/wide": get("getWide", "Wide", parameters=params,
                               summary="<p>Everything, <strong>at once</strong>.</p>")},
        "components": {"schemas": schemas}}))
    out = tmp_path / "curation.yaml"
    text = init(spec, out)
    found = blocks(text)
    assert found["get_a"].fields == {
        "b": "integer", "a": "string",
        "self": "object (recursive)", "self.b": "integer", "self.a": "string",
        "self.self": "object (recursive)", "self.either": "object | string (recursive)",
        "either": "object | string (recursive)", "either.b": "integer", "either.a": "string",
        "either.self": "object (recursive)", "either.either": "object | string (recursive)"}
    assert found["get_nest"].notes[-1] == \
        "response (200, application/json): array of array of array (recursive)"
    wide_block = found["get_wide"]
    assert wide_block.description == "Everything, at once."
    assert len(wide_block.params) == 15 and "  … 3 more" in wide_block.notes
    assert wide_block.params["q00"] == "query, string — Filter number 0."
    assert [f for f in wide_block.fields if "." not in f] == [f"f{i:02d}" for i in range(12)]
    assert [f for f in wide_block.fields if f.startswith("f00.")] == [
        f"f00.g{j}" for j in range(5)]
    assert "    … 2 more in f00" in wide_block.notes and "  … 2 more" in wide_block.notes
    choose(out, text, ["get_a", "get_wide"])
    check(out, 2)


def _names_follow_operation_ids(found: dict[str, Block]) -> None:
    """Every name is valid and distinct, and carries a `_N` suffix only where two
    operationIds make the same snake_case name (or a 64-character cut of it)."""
    assert all(NAME.fullmatch(name) and len(name) <= 64 for name in found)
    bases: dict[str, list[str]] = {}
    for block in found.values():
        assert " /" not in block.key, f"{block.name} has no operationId: {block.key}"
        bases.setdefault(tool_name_for(block.key, "GET", "/"), []).append(block.name)
    for base, names in bases.items():
        assert names[0] == base
        assert names[1:] == [f"{base[:64 - len(str(n)) - 1].rstrip('_')}_{n}"
                             for n in range(2, len(names) + 1)]


@pytest.mark.corpus
def test_digitalocean_reads_like_its_own_documentation(tmp_path: Path) -> None:
    """Every operation of DigitalOcean's spec is a `$ref` into a file of its own."""
    out = tmp_path / "curation.yaml"
    text = init(DIGITALOCEAN, out)
    found = blocks(text)
    assert len(found) == 283
    _names_follow_operation_ids(found)
    assert not [name for name in found if re.search(r"_\d+$", name)]
    assert all(block.description for block in found.values())
    keys = found["ssh_keys_list"]
    assert (keys.key, keys.description) == ("sshKeys_list", "List All SSH Keys")
    assert keys.params["per_page"] == "query, integer — Number of items returned per page"
    assert keys.fields["ssh_keys[].fingerprint"] == "string"
    assert found["ssh_keys_get"].params["ssh_key_identifier"].startswith(
        "path, integer | string, required — ")
    choose(out, text, ["ssh_keys_list", "droplets_list", "account_get"])
    check(out, 3)


@pytest.mark.corpus
@pytest.mark.parametrize("spec", [GITHUB, STRIPE], ids=["github", "stripe"])
def test_big_specs_are_named_from_their_operation_ids(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "curation.yaml"
    text = init(spec, out)
    found = blocks(text)
    _names_follow_operation_ids(found)
    chosen = {GITHUB: ["repos_get_content", "issues_list_for_repo"],
              STRIPE: ["get_customers_customer", "get_charges"]}[spec]
    assert all(found[name].fields and found[name].params for name in chosen)
    if spec == GITHUB:
        assert found["repos_get_content"].key == "repos/get-content"
    choose(out, text, chosen)
    check(out, len(chosen))


def test_the_readme_shows_what_init_writes(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("The starter lists every operation of the spec")
    shown = re.search(r"```yaml\n(.*?)```", readme[start:], re.DOTALL)
    assert shown is not None
    assert shown[1] in init(ROOT / "specs" / "inventory.yaml", tmp_path / "curation.yaml")


def test_text_from_the_spec_cannot_break_out_of_its_comment(tmp_path: Path) -> None:
    """Line breaks YAML knows (LF, CR, NEL, LS, PS) and characters it refuses, in names,
    enums and descriptions, never end a comment line or spoil the starter."""
    hostile = "x\ntools: {evil: {operation: deleteAll}}\r\x85\u2028\u2029\x7f\x00 end"
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps({
        "openapi": "3.0.3", "info": {"title": f"T{hostile}", "version": "1"},
        "paths": {"/things": {"get": {
            "operationId": "listThings", "summary": f"List{hostile}",
            "parameters": [{"name": "q", "in": "query", "description": f"Q{hostile}",
                            "schema": {"type": "string", "enum": [hostile, "plain"]}}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    f"odd{hostile}": {"type": "string", "enum": [hostile]},
                    "plain": {"type": "integer"}}}}}}}}}}}))
    out = tmp_path / "curation.yaml"
    text = init(spec, out)
    assert set(yaml.safe_load(text)) == {"version", "spec", "server", "backend", "read_only",
                                         "tools"}
    assert yaml.safe_load(text)["tools"] is None
    assert "\x85" not in text and "\u2028" not in text and "\x7f" not in text
    found = blocks(text)
    assert list(found) == ["list_things"]
    assert found["list_things"].fields["plain"] == "integer"
    choose(out, text, ["list_things"], shaped=False)
    check(out, 1)
    assert set(yaml.safe_load(out.read_text())["tools"]) == {"list_things"}


def test_an_operation_id_that_names_no_single_operation_is_not_used_as_the_key(
        tmp_path: Path) -> None:
    """Two operations with one operationId, and an operationId spelled like a label: the
    starter names them `METHOD /path`, which `check` resolves to the operation meant."""
    ok = {"200": {"description": "ok"}}
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps({
        "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "paths": {"/a": {"get": {"operationId": "getThing", "responses": ok}},
                  "/b": {"get": {"operationId": "getThing", "responses": ok}},
                  "/c": {"get": {"operationId": "get /elsewhere", "responses": ok}}}}))
    out = tmp_path / "curation.yaml"
    text = init(spec, out)
    found = blocks(text)
    assert [(b.name, b.key) for b in found.values()] == [
        ("get_thing", "GET /a"), ("get_thing_2", "GET /b"), ("get_elsewhere", "GET /c")]
    choose(out, text, list(found))
    check(out, 3)
