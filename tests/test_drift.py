"""Drift: `facade lock` records the curated operations' shapes; `facade diff` and `facade
check` report what a new spec version changes under them, with exit codes for CI.

tests/data/drift holds a curation over v1.yaml (+ schemas-v1.yaml), v2.yaml with breaking
changes under every curated operation, and v3.yaml with changes that break nothing the
curation uses. The real-world corpus gives two more: GitHub's spec against an edited copy
(needs the corpus), and the OAI's Swagger 2.0 petstore against the OAI's own OpenAPI 3.0
version of it (copied into tests/data/specs-corpus).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from facade.cli import main
from facade.curate.drift import EXIT_BREAKING, EXIT_CHANGED, EXIT_ERROR, EXIT_OK
from facade.curate.lock import spec_files

from conftest import SPECS_CORPUS, VENDORED_SPECS

DATA = Path(__file__).resolve().parent / "data" / "drift"
GITHUB = SPECS_CORPUS / "WillAbides__octo-go@fa158bd" / "api.github.com.json"
OAI = VENDORED_SPECS / "OAI__OpenAPI-Specification@fad4c13" / "examples"
DIGITALOCEAN = (SPECS_CORPUS / "digitalocean__openapi@62327d0" / "specification"
                / "DigitalOcean-public.v2.yaml")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of tests/data/drift, locked, as the working directory."""
    shutil.copytree(DATA, tmp_path / "api")
    monkeypatch.chdir(tmp_path / "api")
    result = run("lock")
    assert result.exit_code == 0, result.output
    return tmp_path / "api"


def run(*args: str, config: str = "curation.yaml") -> Result:
    return CliRunner().invoke(main, [*args, "--config", config])


def test_lock_records_digests_and_shapes(folder: Path) -> None:
    assert run("lock").stdout.startswith(
        "curation.lock.json: 6 operation(s), spec sha256:")
    lock = json.loads((folder / "curation.lock.json").read_text())
    assert lock["format"] == "facade-lock" and lock["version"] == 1
    assert lock["spec"]["file"] == "v1.yaml"
    assert list(lock["spec"]["files"]) == ["v1.yaml", "schemas-v1.yaml"]
    assert all(d.startswith("sha256:") for d in lock["spec"]["files"].values())
    assert lock["tools"]["list_items"] == {
        "operation": "listItems", "operation_id": "listItems", "method": "GET",
        "path": "/items",
        "inputs": [
            {"in": "query", "name": "limit", "type": "integer", "required": False,
             "format": "int32"},
            {"in": "query", "name": "tag", "type": "array<string>", "required": False}],
        "body_media_type": None, "response_media_type": "application/json",
        "fields": [
            {"path": "items[].sku", "used_by": ["include"], "type": "string"},
            {"path": "items[].stock", "used_by": ["include"], "type": "integer"},
            {"path": "items[].price.amount", "used_by": ["include"], "type": "number"},
            {"path": "next_cursor", "used_by": ["include"], "type": "string"}]}
    assert lock["tools"]["get_item"]["fields"] == [
        {"path": "supplier.contact", "used_by": ["redact"], "type": "object"}]
    assert lock["tools"]["create_order"]["inputs"] == [
        {"in": "body", "name": "quantity", "type": "integer", "required": False},
        {"in": "body", "name": "sku", "type": "string", "required": True}]
    # Locking again over the same files writes the same lock.
    before = (folder / "curation.lock.json").read_text()
    run("lock")
    assert (folder / "curation.lock.json").read_text() == before


def test_diff_against_the_locked_spec_is_no_drift(folder: Path) -> None:
    result = run("diff")
    assert (result.exit_code, result.stdout) == (
        EXIT_OK, "v1.yaml: no drift since curation.lock.json\n")


def test_diff_reports_breaking_drift(folder: Path) -> None:
    result = run("diff", "--spec", "v2.yaml")
    assert result.exit_code == EXIT_BREAKING
    assert result.stdout.splitlines() == [
        "curation.yaml:8:16: warning: tools.list_items.operation: new optional query "
        "parameter 'sort' (string)",
        "curation.yaml:10:7: tools.list_items.params.limit: query parameter 'limit' changed "
        "type: integer → string",
        "curation.yaml:12:32: tools.list_items.response.include[1]: response field "
        "'items[].stock' (include) changed type: integer → number",
        "curation.yaml:14:16: tools.get_item.operation: renamed: the operationId of GET "
        "/items/{itemId} is now 'fetchItem' (was 'getItem') (set `operation: fetchItem`)",
        "curation.yaml:18:16: tools.get_item.response.redact[0]: response field "
        "'supplier.contact' (redact) is no longer in the response schema",
        "curation.yaml:20:16: tools.get_item_stock.operation: renamed: GET "
        "/items/{itemId}/stock (operationId 'getItemStock') is now GET "
        "/items/{itemId}/stock-levels (set `operation: getItemStock`)",
        "curation.yaml:22:16: warning: tools.get_category.operation: path parameter "
        "'categoryId' changed format: int32 → int64",
        "curation.yaml:22:16: tools.get_category.operation: new required query parameter "
        "'depth' (integer)",
        "curation.yaml:22:16: warning: tools.get_category.operation: query parameter 'lang' "
        "is no longer required",
        "curation.yaml:24:16: tools.list_warehouses.operation: removed: GET /warehouses "
        "(operationId 'listWarehouses') is no longer in the spec",
        "curation.yaml:26:16: tools.create_order.operation: new required body property "
        "'customer' (string)",
        "curation.yaml:26:16: tools.create_order.operation: body property 'quantity' was "
        "removed",
        "v2.yaml: 9 breaking change(s), 3 other change(s) since curation.lock.json "
        "(`facade lock` accepts them)",
    ]


def test_diff_reports_other_changes_with_their_own_exit_code(folder: Path) -> None:
    result = run("diff", "--spec", "v3.yaml")
    assert result.exit_code == EXIT_CHANGED
    assert result.stdout.splitlines() == [
        "curation.yaml:8:16: warning: tools.list_items.operation: new optional query "
        "parameter 'sort' (string)",
        "curation.yaml:10:7: warning: tools.list_items.params.limit: query parameter "
        "'limit' changed format: int32 → int64",
        "curation.yaml:22:16: warning: tools.get_category.operation: query parameter 'lang' "
        "is no longer required",
        "curation.yaml:24:16: warning: tools.list_warehouses.operation: GET /warehouses is "
        "now GET /depots",
        "v3.yaml: 0 breaking change(s), 4 other change(s) since curation.lock.json "
        "(`facade lock` accepts them)",
    ]


def test_a_new_required_parameter_the_curation_supplies_is_not_breaking(folder: Path) -> None:
    text = (folder / "curation.yaml").read_text()
    (folder / "curation.yaml").write_text(text.replace(
        "  get_category:\n    operation: getCategory\n",
        "  get_category:\n    operation: getCategory\n    params: {depth: {value: 1}}\n"))
    lines = run("diff", "--spec", "v2.yaml").stdout.splitlines()
    assert "curation.yaml:23:14: warning: tools.get_category.params.depth: new required " \
        "query parameter 'depth' (integer)" in lines


def test_diff_json(folder: Path) -> None:
    result = run("diff", "--spec", "v3.yaml", "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert (report["breaking"], report["exit_code"], len(report["changes"])) == (0, 3, 4)
    assert report["changes"][0] == {"at": "tools.list_items.params.limit", "breaking": False,
                                    "message": "query parameter 'limit' changed format: "
                                    "int32 → int64"}


def test_a_tool_curated_after_the_lock_is_reported(folder: Path) -> None:
    with (folder / "curation.yaml").open("a") as f:
        f.write("  get_item_again:\n    operation: getItem\n")
    result = run("diff")
    assert result.exit_code == EXIT_CHANGED
    assert result.stdout.splitlines()[0] == (
        "curation.yaml:27:3: warning: tools.get_item_again: not in the lock (run `facade "
        "lock` to record it)")


@pytest.mark.parametrize(("args", "message"), [
    (("--lock", "nowhere.json"), "nowhere.json: no lock file; run `facade lock` first"),
    (("--spec", "missing.yaml"), "missing.yaml: file not found"),
], ids=["no-lock", "no-spec"])
def test_diff_that_cannot_compare_exits_2(folder: Path, args: tuple[str, ...],
                                          message: str) -> None:
    result = run("diff", *args)
    assert result.exit_code == EXIT_ERROR
    assert message in result.stderr


def test_lock_refuses_what_the_spec_does_not_have(folder: Path) -> None:
    text = (folder / "curation.yaml").read_text()
    (folder / "curation.yaml").write_text(text.replace("listWarehouses", "listDepots")
                                          .replace('"items[].sku"', '"items[].skew"'))
    result = run("lock")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "curation.yaml:12:17: tools.list_items.response.include[0]: 'items[].skew' is not in "
        "the response schema (run `facade check`)",
        "curation.yaml:24:16: tools.list_warehouses.operation: operation 'listDepots' is not "
        "(or not uniquely) in v1.yaml (run `facade check`)",
        "2 problem(s) found."]


def drift_lines(stderr: str, count: int) -> list[str]:
    """The last `count` lines: `check` prints drift after its own warnings (the lint's)."""
    return stderr.splitlines()[-count:]


def test_check_is_quiet_while_the_spec_is_unchanged(folder: Path) -> None:
    result = run("check")
    assert result.exit_code == 0
    assert "curation.lock.json" not in result.stderr


def test_check_fails_on_breaking_drift_in_any_spec_file(folder: Path) -> None:
    schemas = folder / "schemas-v1.yaml"
    schemas.write_text(schemas.read_text().replace("stock: {type: integer}",
                                                   "stock: {type: string}"))
    result = run("check")
    assert result.exit_code == 1
    assert drift_lines(result.stderr, 2) == [
        "curation.yaml:12:32: tools.list_items.response.include[1]: response field "
        "'items[].stock' (include) changed type: integer → string",
        "v1.yaml: 1 breaking change(s), 0 other change(s) since curation.lock.json "
        "(`facade lock` accepts them)"]
    assert result.stdout == ""
    assert run("lock").exit_code == 0  # accepted
    assert run("check").exit_code == 0


def test_check_warns_about_other_drift(folder: Path) -> None:
    spec = folder / "v1.yaml"
    spec.write_text(spec.read_text().replace("format: int32}}\n      responses",
                                             "format: int64}}\n      responses"))
    result = run("check")
    assert result.exit_code == 0
    assert drift_lines(result.stderr, 2) == [
        "curation.yaml:10:7: warning: tools.list_items.params.limit: query parameter "
        "'limit' changed format: int32 → int64",
        "v1.yaml: 0 breaking change(s), 1 other change(s) since curation.lock.json "
        "(`facade lock` accepts them)"]
    assert result.stdout.startswith("curation.yaml: ok, 6 tool(s)")


def test_check_with_an_unreadable_lock_fails(folder: Path) -> None:
    (folder / "curation.lock.json").write_text("{")
    (folder / "v1.yaml").write_text((folder / "v1.yaml").read_text() + "\n")
    result = run("check")
    assert result.exit_code == 1
    (line,) = drift_lines(result.stderr, 1)
    assert line.startswith("curation.lock.json: cannot read the lock (")
    assert line.endswith("); run `facade lock` again")


def test_swagger_2_petstore_against_its_3_0_version(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The OAI's own 3.0 version of its 2.0 petstore: no drift under the curated ones."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "curation.yaml").write_text(yaml.safe_dump({
        "version": 1, "spec": str(OAI / "v2.0" / "json" / "petstore-expanded.json"),
        "backend": {"base_url": "http://127.0.0.1:9"}, "read_only": False,
        "tools": {"find_pets": {"operation": "findPets",
                                "response": {"include": ["id", "name", "tag"]}},
                  "find_pet": {"operation": "find pet by id"},
                  "add_pet": {"operation": "addPet"},
                  "delete_pet": {"operation": "deletePet"}}}))
    assert run("lock").exit_code == 0
    result = run("diff", "--spec", str(OAI / "v3.0" / "petstore-expanded.json"))
    assert result.stdout.endswith("no drift since curation.lock.json\n"), result.output
    assert result.exit_code == EXIT_OK


def _github_v2(data: dict[str, Any]) -> dict[str, Any]:
    """GitHub's spec, edited under four curated operations."""
    paths, schemas = data["paths"], data["components"]["schemas"]
    issues = paths["/repos/{owner}/{repo}/issues"]["get"]
    issues["parameters"] = [p for p in issues["parameters"] if p.get("name") != "milestone"]
    schemas["full-repository"]["properties"]["full_name"] = {"type": "integer"}
    paths["/repos/{owner}/{repo}/pulls/{pull_number}"]["get"]["operationId"] = "pulls/get-one"
    user = paths["/users/{username}"]["get"]
    user["parameters"].append({"name": "fields", "in": "query", "required": True,
                               "schema": {"type": "string"}})
    return data


@pytest.mark.corpus
def test_github_spec_against_an_edited_copy(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "api.json").write_bytes(GITHUB.read_bytes())
    (tmp_path / "curation.yaml").write_text(yaml.safe_dump({
        "version": 1, "spec": "api.json", "backend": {"base_url": "http://127.0.0.1:9"},
        "tools": {
            "get_repo": {"operation": "repos/get",
                         "response": {"include": ["id", "full_name", "owner.login"]}},
            "list_issues": {"operation": "issues/list-for-repo",
                            "response": {"include": ["number", "title", "user.login"]}},
            "get_pull": {"operation": "pulls/get"},
            "get_user": {"operation": "users/get-by-username",
                         "response": {"redact": ["email"]}}}}, sort_keys=False))
    assert run("lock").exit_code == 0
    (tmp_path / "v2.json").write_text(json.dumps(_github_v2(json.loads(GITHUB.read_text()))))
    result = run("diff", "--spec", "v2.json")
    assert result.exit_code == EXIT_BREAKING
    assert [line.split(": ", 1)[1] for line in result.stdout.splitlines()[:-1]] == [
        "tools.get_repo.response.include[1]: response field 'full_name' (include) changed "
        "type: string → integer",
        "tools.list_issues.operation: query parameter 'milestone' was removed",
        "tools.get_pull.operation: renamed: the operationId of GET "
        "/repos/{owner}/{repo}/pulls/{pull_number} is now 'pulls/get-one' (was 'pulls/get') "
        "(set `operation: pulls/get-one`)",
        "tools.get_user.operation: new required query parameter 'fields' (string)"]
    assert result.stdout.splitlines()[-1] == (
        "v2.json: 4 breaking change(s), 0 other change(s) since curation.lock.json "
        "(`facade lock` accepts them)")
    # `check` sees the same once the curation's own spec changes; the curation no longer
    # loads (pulls/get is gone), and the drift says why.
    (tmp_path / "api.json").write_bytes((tmp_path / "v2.json").read_bytes())
    result = run("check")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("curation.yaml:21:16: tools.get_pull.operation: unknown "
                               "operation 'pulls/get' in api.json (did you mean "
                               "'pulls/get-one'")
    assert lines[-2:] == ["api.json: 4 breaking change(s), 0 other change(s) since "
                          "curation.lock.json (`facade lock` accepts them)",
                          "1 problem(s) found."]


def test_spec_files_follow_refs_across_files() -> None:
    separate = (OAI / "v2.0" / "json" / "petstore-separate" / "spec" / "swagger.json").resolve()
    assert [f.relative_to(separate.parent.parent).as_posix() for f in spec_files(separate)] \
        == ["spec/swagger.json", "common/Error.json", "spec/NewPet.json", "spec/Pet.json",
            "spec/parameters.json"]


@pytest.mark.corpus
def test_spec_files_follow_refs_across_a_thousand_files() -> None:
    files = spec_files(DIGITALOCEAN)
    assert len(files) > 1000 and files[0] == DIGITALOCEAN.resolve()
