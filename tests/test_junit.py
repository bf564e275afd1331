"""`facade test --junit FILE`: replayed contract examples as JUnit XML, through the CLI.

Fixtures are recorded against the example backend on 127.0.0.1 with `facade call
--record`, then replayed offline, as a curator does.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import TOKEN

from facade.cli import main

CURATION = """
version: 1
spec: specs/inventory.yaml
backend:
  base_url: ${INVENTORY_URL}
  auth: {bearer_env: INVENTORY_TOKEN}
tools:
  get_item:
    operation: getItem
    description: One item by SKU.
    params:
      itemId: {rename: sku}
      X-Tenant: {value: acme}
  list_items:
    operation: listItems
    description: Items, newest first.
    params:
      X-Tenant: {value: acme}
    response:
      include: ["items[].sku", "items[].stock"]
"""


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result


@pytest.fixture
def recorded(write_curation: Callable[[str], Path], example_env: dict[str, str],
             monkeypatch: pytest.MonkeyPatch) -> Path:
    """A curation with three fixtures: one that replays as recorded, one whose recorded
    answer was edited (so its result differs, and the answer deviates from the spec),
    and one that is not a fixture at all."""
    config = write_curation(CURATION)
    monkeypatch.chdir(config.parent)
    for tool, args, name in (("get_item", '{"sku": "SKU-1042"}', "drill"),
                             ("list_items", '{"limit": 2}', "two")):
        result = run("call", tool, "--args", args, "--record", name)
        assert result.exit_code == 0, result.stderr
    two = config.parent / "fixtures" / "list_items" / "two.json"
    data = json.loads(two.read_text())
    data["response"]["json"]["items"][0]["stock"] = "plenty"
    two.write_text(json.dumps(data))
    (config.parent / "fixtures" / "get_item" / "broken.json").write_text("{")
    return config


def test_junit_has_a_testcase_per_fixture(recorded: Path, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    result = run("test", "--junit", str(report))
    assert result.exit_code == 1  # unchanged: a difference fails
    assert result.stdout.splitlines()[-1] == "3 fixture(s): 1 ok, 2 failed"
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors")} == {
        "tests": "3", "failures": "1", "errors": "1"}
    (suite,) = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"),
            suite.get("errors")) == ("curation.yaml", "3", "1", "1")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    assert set(cases) == {("get_item", "broken"), ("get_item", "drill"),
                          ("list_items", "two")}

    ok = cases[("get_item", "drill")]
    assert ok.get("file") == "fixtures/get_item/drill.json"
    assert ok.find("failure") is None and ok.find("error") is None
    assert ok.find("system-out") is None
    assert _properties(ok) == {"deviations": "0"}

    differs = cases[("list_items", "two")]
    failure = differs.find("failure")
    assert failure is not None
    assert failure.get("message") == "the result differs from the golden one"
    assert '-        "stock": ' in (failure.text or "")
    assert '+        "stock": "plenty"' in (failure.text or "")
    # The deviation, as `facade test` prints it under the fixture.
    printed = result.stdout.splitlines()
    at = printed.index("fixtures/list_items/two.json: the recorded answer deviates from the "
                       "documented response schema in 1 place(s):")
    out = differs.find("system-out")
    assert out is not None and "stock" in printed[at + 1]
    assert out.text == printed[at + 1].strip()
    assert _properties(differs) == {"deviations": "1"}

    error = cases[("get_item", "broken")].find("error")
    assert error is not None
    assert (error.get("message") or "").startswith("cannot replay: cannot read it: ")
    assert TOKEN not in report.read_text()


def test_all_passing_exits_0_and_says_so(recorded: Path, tmp_path: Path) -> None:
    (recorded.parent / "fixtures" / "list_items" / "two.json").unlink()
    (recorded.parent / "fixtures" / "get_item" / "broken.json").unlink()
    report = tmp_path / "junit.xml"
    assert run("test", "--junit", str(report)).exit_code == 0
    root = ET.parse(report).getroot()
    assert {k: root.get(k) for k in ("tests", "failures", "errors")} == {
        "tests": "1", "failures": "0", "errors": "0"}


def test_an_unwritable_report_is_one_line(recorded: Path, tmp_path: Path) -> None:
    result = run("test", "--junit", str(tmp_path / "missing" / "junit.xml"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{tmp_path / 'missing' / 'junit.xml'}: cannot write "
                                    "the JUnit report: ")
    assert "Traceback" not in result.output


def _properties(case: ET.Element) -> dict[str, str | None]:
    return {p.get("name") or "": p.get("value") for p in case.iter("property")}
