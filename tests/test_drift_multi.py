"""Drift in a multi-API curation (`apis:`): `facade lock` writes a section per API, and
`facade diff` compares every API with its own spec, or one (`--api`) with a new one.

Two APIs: `inventory` over the example spec (copied by `write_curation`) and `shop` over
tests/data/drift's v1.yaml, whose v2.yaml breaks every curated operation.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from facade.cli import main
from facade.curate.drift import EXIT_BREAKING, EXIT_CHANGED, EXIT_ERROR, EXIT_OK

DRIFT = Path(__file__).resolve().parent / "data" / "drift"

CURATION = """
version: 1
apis:
  inventory:
    namespace: inv
    spec: specs/inventory.yaml
    backend: {base_url: "http://127.0.0.1:9"}
    tools:
      list_items:
        operation: listItems
        params:
          X-Tenant: {value: acme}
          limit: {default: 10}
        response:
          include: ["items[].sku", "items[].stock"]
      get_item:
        operation: getItem
        params: {itemId: {rename: sku}, X-Tenant: {value: acme}}
  shop:
    spec: shop/v1.yaml
    backend: {base_url: "http://127.0.0.1:9"}
    read_only: false
    tools:
      list_products:
        operation: listItems
      get_category:
        operation: getCategory
"""


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result


@pytest.fixture
def folder(write_curation: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The two-API curation, locked, in the working directory."""
    config = write_curation(CURATION)
    shutil.copytree(DRIFT, config.parent / "shop")
    monkeypatch.chdir(config.parent)
    result = run("lock")
    assert result.exit_code == 0, result.output
    return config.parent


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_lock_writes_a_section_per_api(folder: Path) -> None:
    result = run("lock")
    assert result.stdout.startswith(
        "curation.lock.json: 4 operation(s), 2 API(s), specs sha256:")
    lock: dict[str, Any] = json.loads((folder / "curation.lock.json").read_text())
    assert (lock["format"], lock["version"]) == ("facade-lock", 2)
    assert list(lock["apis"]) == ["inventory", "shop"]
    inventory, shop = lock["apis"]["inventory"], lock["apis"]["shop"]
    assert inventory["spec"]["file"] == "specs/inventory.yaml"
    assert sorted(inventory["spec"]["files"]) == [
        "specs/components/parameters.yaml", "specs/components/schemas.yaml",
        "specs/inventory.yaml"]
    assert shop["spec"]["file"] == "shop/v1.yaml"
    assert list(inventory["tools"]) == ["list_items", "get_item"]
    assert list(shop["tools"]) == ["list_products", "get_category"]
    assert inventory["tools"]["list_items"]["fields"] == [
        {"path": "items[].sku", "used_by": ["include"], "type": "string"},
        {"path": "items[].stock", "used_by": ["include"], "type": "integer"}]


def test_no_drift_is_said_per_api(folder: Path) -> None:
    result = run("diff")
    assert (result.exit_code, result.stdout.splitlines()) == (EXIT_OK, [
        "api 'inventory': specs/inventory.yaml: no drift since curation.lock.json",
        "api 'shop': shop/v1.yaml: no drift since curation.lock.json"])


def test_a_changed_spec_drifts_under_its_api_only(folder: Path) -> None:
    edit(folder / "specs" / "inventory.yaml",
         "schema: {type: integer, minimum: 1, maximum: 100, default: 20}",
         "schema: {type: string}")
    edit(folder / "specs" / "components" / "schemas.yaml",
         "    stock: {type: integer, description: Units on hand across warehouses.}\n", "")
    result = run("diff")
    assert result.exit_code == EXIT_BREAKING
    assert result.stdout.splitlines() == [
        "curation.yaml:12:11: apis.inventory.tools.list_items.params.limit: query parameter "
        "'limit' changed type: integer → string",
        "curation.yaml:14:36: apis.inventory.tools.list_items.response.include[1]: response "
        "field 'items[].stock' (include) is no longer in the response schema",
        "api 'inventory': specs/inventory.yaml: 2 breaking change(s), 0 other change(s) "
        "since curation.lock.json (`facade lock` accepts them)",
        "api 'shop': shop/v1.yaml: no drift since curation.lock.json"]
    report = json.loads(run("diff", "--json").stdout)
    assert (report["breaking"], report["exit_code"]) == (2, EXIT_BREAKING)
    assert report["apis"]["shop"]["changes"] == []
    assert [c["at"] for c in report["apis"]["inventory"]["changes"]] == [
        "tools.list_items.params.limit", "tools.list_items.response.include.1"]
    # `check` sees it too, under the same API, and fails.
    check = run("check")
    assert check.exit_code == 1
    assert "api 'inventory': specs/inventory.yaml: 2 breaking change(s)" in check.stderr
    assert "shop" not in check.stderr


def test_one_api_against_a_new_spec(folder: Path) -> None:
    result = run("diff", "--api", "shop", "--spec", "shop/v3.yaml")
    assert result.exit_code == EXIT_CHANGED
    assert result.stdout.splitlines() == [
        "curation.yaml:24:20: warning: apis.shop.tools.list_products.operation: query "
        "parameter 'limit' changed format: int32 → int64",
        "curation.yaml:24:20: warning: apis.shop.tools.list_products.operation: new optional "
        "query parameter 'sort' (string)",
        "curation.yaml:26:20: warning: apis.shop.tools.get_category.operation: query "
        "parameter 'lang' is no longer required",
        "api 'shop': shop/v3.yaml: 0 breaking change(s), 3 other change(s) since "
        "curation.lock.json (`facade lock` accepts them)"]
    breaking = run("diff", "--api", "shop", "--spec", "shop/v2.yaml")
    assert breaking.exit_code == EXIT_BREAKING
    assert breaking.stdout.splitlines()[-1].startswith(
        "api 'shop': shop/v2.yaml: 2 breaking change(s), 3 other change(s)")
    assert all(": apis.shop.tools." in line for line in breaking.stdout.splitlines()[:-1])
    assert run("diff", "--api", "inventory").stdout == (
        "api 'inventory': specs/inventory.yaml: no drift since curation.lock.json\n")


@pytest.mark.parametrize(("args", "message"), [
    (("--api", "shopp"), "curation.yaml: no API 'shopp' (did you mean 'shop'?); the "
     "curation's APIs: inventory, shop"),
    (("--api", "billing", "--spec", "shop/v2.yaml"), "curation.yaml: no API 'billing'; the "
     "curation's APIs: inventory, shop"),
    (("--spec", "shop/v2.yaml"), "curation.yaml: --spec is one API's new spec: name that API "
     "with --api (the curation's APIs: inventory, shop)"),
], ids=["misspelt", "unknown", "spec-without-api"])
def test_an_api_that_cannot_be_told_is_a_clear_error(folder: Path, args: tuple[str, ...],
                                                     message: str) -> None:
    result = run("diff", *args)
    assert (result.exit_code, result.stderr, result.stdout) == (EXIT_ERROR, message + "\n",
                                                                "")


def test_an_api_added_after_the_lock_is_reported(folder: Path) -> None:
    with (folder / "curation.yaml").open("a") as f:
        f.write("  more:\n    spec: shop/v1.yaml\n    backend: {base_url: "
                "\"http://127.0.0.1:9\"}\n    tools:\n      more_categories: "
                "{operation: getCategory}\n")
    result = run("diff")
    assert result.exit_code == EXIT_CHANGED
    assert "curation.yaml:27:3: warning: apis.more: not in the lock (run `facade lock` to " \
        "record it)" in result.stdout.splitlines()


def test_a_single_api_lock_does_not_pass_for_a_multi_api_one(folder: Path) -> None:
    single = folder / "single.yaml"
    single.write_text((folder / "shop" / "curation.yaml").read_text().replace(
        "spec: v1.yaml", "spec: shop/v1.yaml"))
    assert run("lock", "--config", "single.yaml", "--output", "curation.lock.json"
               ).exit_code == 0
    assert json.loads((folder / "curation.lock.json").read_text())["version"] == 1
    result = run("diff")
    assert result.exit_code == EXIT_ERROR
    assert result.stderr == ("curation.lock.json: the lock was written for a single-API "
                             "curation; run `facade lock` again\n")
    result = run("diff", "--api", "shop", "--config", "single.yaml")
    assert (result.exit_code, result.stderr) == (EXIT_ERROR, (
        "single.yaml: --api names an API of a multi-API curation (`apis:`); this one has a "
        "single API\n"))


def test_lock_reports_each_apis_problems_at_once(folder: Path) -> None:
    edit(folder / "curation.yaml", "operation: getCategory", "operation: getCategori")
    edit(folder / "curation.yaml", '"items[].stock"', '"items[].stok"')
    result = run("lock")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "curation.yaml:14:36: apis.inventory.tools.list_items.response.include[1]: "
        "'items[].stok' is not in the response schema (run `facade check`)",
        "curation.yaml:26:20: apis.shop.tools.get_category.operation: operation "
        "'getCategori' is not (or not uniquely) in shop/v1.yaml (run `facade check`)",
        "2 problem(s) found."]
