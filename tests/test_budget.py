"""The token budget: `facade tools --budget` and `facade check --max-tokens`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from facade.cli import main, tool_listing
from facade.curate.budget import estimate_tokens, listing, listing_budget, spec_budget
from facade.curate.scaffold import starter_curation
from facade.loading.loader import load
from facade.tools import unique_tool_name

from conftest import SPECS_CORPUS

ROOT = Path(__file__).resolve().parent.parent
CURATION = ROOT / "curation.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("size", "tokens"), [(0, 0), (1, 1), (4, 1), (5, 2), (4048, 1012)])
def test_tokens_are_bytes_over_four_rounded_up(size: int, tokens: int) -> None:
    assert estimate_tokens(size) == tokens


def test_the_budget_measures_the_exact_tools_list() -> None:
    facade = load(CURATION)
    exact = tool_listing(facade)
    assert listing(facade.tools) == exact  # the validator-free listing used for big specs
    budget = listing_budget(facade.tools)
    text = json.dumps({"tools": exact}, ensure_ascii=False, separators=(",", ":"))
    assert budget.bytes == len(text.encode())
    assert [t.name for t in budget.tools] == [t["name"] for t in exact]
    # The per-tool sizes add up to the list, bar its `{"tools":[…]}` and commas.
    assert sum(t.bytes for t in budget.tools) == budget.bytes - len('{"tools":[]}') - 3


def test_tools_budget_table_and_uncurated_comparison() -> None:
    code, out, err = run("tools", "--budget", "--config", str(CURATION))
    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"tool +\| HTTP operation +\| +bytes \| ~tokens \| share", lines[0])
    assert re.fullmatch(r"get_item +\| GET /items/\{itemId\} +\| +[\d,]+ \| +\d+ \| +\d+%",
                        lines[3])
    budget = listing_budget(load(CURATION).tools)
    assert lines[6] == (f"4 tool(s): tools/list is {budget.bytes:,} bytes, "
                        f"~{budget.tokens:,} tokens (estimated as bytes / 4)")
    assert re.fullmatch(r"uncurated: 7 operation\(s\) of .*inventory\.yaml as tools would be "
                        r"[\d,]+ bytes, ~[\d,]+ tokens", lines[7])
    assert re.fullmatch(r"the curated list is \d+\.\d% of that \(the uncurated build took "
                        r"\d+\.\d s\)", lines[8])


def test_tools_budget_json() -> None:
    code, out, err = run("tools", "--budget", "--json", "--config", str(CURATION))
    assert code == 0, err
    data = json.loads(out)
    assert data["estimator"] == "ceil(bytes / 4)"
    assert [t["name"] for t in data["curated"]["tools"]] == [
        "list_items", "get_item", "get_item_stock", "get_category"]
    assert data["curated"]["tokens"] == estimate_tokens(data["curated"]["bytes"])
    whole = data["uncurated"]
    assert whole["operations"] == 7 and whole["skipped"] == 0
    assert whole["bytes"] > data["curated"]["bytes"] and whole["seconds"] >= 0


def test_check_max_tokens_fails_over_budget() -> None:
    budget = listing_budget(load(CURATION).tools)
    code, out, err = run("check", "--max-tokens", "500", "--config", str(CURATION))
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == (
        f"curation.yaml: tools/list is ~{budget.tokens:,} tokens ({budget.bytes:,} bytes, "
        "estimated as bytes / 4), over --max-tokens 500; largest: "
        + ", ".join(f"{t.name} ~{t.tokens}" for t in budget.largest())
        + " (drop tools, or trim results with response.include)").replace(
            "curation.yaml", str(CURATION), 1)


def test_check_max_tokens_within_budget() -> None:
    code, out, err = run("check", "--max-tokens", "100000", "--config", str(CURATION))
    assert code == 0 and "ok, 4 tool(s)" in out
    assert "within --max-tokens 100,000" in err


def test_max_tokens_must_be_positive() -> None:
    code, _, err = run("check", "--max-tokens", "0", "--config", str(CURATION))
    assert code == 2 and "--max-tokens" in err


@pytest.mark.corpus
@pytest.mark.parametrize(("entry", "operations"), [
    ("readmeio__oas-examples@060d4ff/3.0/json/star-trek.json", 120),
    ("WillAbides__octo-go@fa158bd/api.github.com.json", 623),
], ids=["stapi", "github"])
def test_a_real_spec_builds_uncurated(entry: str, operations: int) -> None:
    whole = spec_budget(SPECS_CORPUS / entry, CURATION)
    assert whole.operations == operations and whole.skipped == 0
    assert len({t.name for t in whole.budget.tools}) == operations
    assert whole.budget.tokens > 100_000  # why a curation matters


def test_a_spec_without_operations_costs_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "hooks.json"
    spec.write_text(json.dumps({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
                                "webhooks": {}}))
    whole = spec_budget(spec, CURATION)
    assert (whole.operations, whole.skipped, whole.budget.tools) == (0, 0, ())


def test_colliding_long_names_stay_distinct_snake_case_and_short(tmp_path: Path) -> None:
    long = "getTheVeryLongResourceNameThatGoesOnAndOnForeverAndEverAndStillMore"
    paths = {f"/{i}": {"get": {"operationId": f"{long}{i}X" + "y" * i,
                               "responses": {"200": {"description": "ok"}}}}
             for i in range(3)}
    spec = tmp_path / "long.json"
    spec.write_text(json.dumps({"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
                                "paths": paths}))
    names = [t.name for t in spec_budget(spec, CURATION).budget.tools]
    text = starter_curation(spec, tmp_path / "curation.yaml")
    assert names == re.findall(r"^  # ([a-z0-9_]+):$", text, re.MULTILINE)
    assert len(set(names)) == 3
    assert all(len(n) <= 64 and re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", n) for n in names)


@pytest.mark.parametrize(("name", "taken", "expected"), [
    ("get_item", set(), "get_item"),
    ("get_item", {"get_item", "get_item_2"}, "get_item_3"),
    ("a" * 64, {"a" * 64}, "a" * 62 + "_2"),
    ("a" * 62 + "_b", {"a" * 62 + "_b"}, "a" * 62 + "_2"),
], ids=["free", "taken-twice", "at-the-limit", "no-double-underscore"])
def test_unique_tool_name(name: str, taken: set[str], expected: str) -> None:
    assert unique_tool_name(name, taken) == expected
