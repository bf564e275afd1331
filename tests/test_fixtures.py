"""Contract examples: `call --record` saves an exchange, `facade test` replays it offline."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import TOKEN

from facade.call.scrub import register_secrets
from facade.cli import main
from facade.curate.fixtures import RecordingTransport, read_fixture

CURATION = """
version: 1
spec: specs/inventory.yaml
backend:
  base_url: ${INVENTORY_URL}
  auth: {bearer_env: INVENTORY_TOKEN}
redact: [internal_cost, "*_token"]
tools:
  get_item:
    operation: getItem
    description: One item by SKU.
    params:
      itemId: {rename: sku}
      X-Tenant: {value: acme}
    response:
      redact: [supplier.contact]
  list_items:
    operation: listItems
    description: Items, newest first.
    params:
      X-Tenant: {value: acme}
    response:
      include: ["items[].sku", "items[].stock"]
  stock_report:
    operation: exportStockReport
    description: The stock report as CSV.
    params:
      X-Tenant: {value: acme}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def curation(write_curation: Callable[[str], Path], example_env: dict[str, str]) -> Path:
    return write_curation(CURATION)


def record(curation: Path, tool: str, args: str, name: str) -> tuple[int, str, str]:
    return run("call", tool, "--args", args, "--record", name, "--config", str(curation))


def test_record_then_replay_is_ok(curation: Path) -> None:
    code, out, err = record(curation, "get_item", '{"sku": "SKU-1042"}', "drill")
    assert code == 0, err
    assert json.loads(out)["sku"] == "SKU-1042"
    path = curation.parent / "fixtures" / "get_item" / "drill.json"
    assert f"recorded {path} (status 200)" in err
    fixture = read_fixture(path)
    assert fixture.arguments == {"sku": "SKU-1042"}
    assert fixture.operation == "GET /items/{itemId}" and fixture.status == 200
    assert fixture.result["structured"]["sku"] == "SKU-1042"
    assert "contact" not in json.dumps(fixture.result)
    code, out, err = run("test", "--config", str(curation))
    assert code == 0, err
    assert out.splitlines()[-1] == "1 fixture(s): 1 ok"


def test_the_file_holds_no_credentials_and_masks_redacted_values(curation: Path) -> None:
    code, _, err = record(curation, "get_item", '{"sku": "SKU-1042"}', "drill")
    assert code == 0, err
    text = (curation.parent / "fixtures" / "get_item" / "drill.json").read_text()
    assert TOKEN not in text and "authorization" not in text.lower()
    assert "x-tenant" not in text.lower() and "127.0.0.1" not in text  # no request at all
    body = json.loads(text)["response"]["json"]
    # Keys the curation redacts keep their place (replay still redacts them), not values.
    assert body["internal_cost"] == "***" and body["sync_token"] == "***"
    assert body["supplier"]["contact"]["email"] == "sales@acme.example"  # a raw answer


def test_an_error_is_a_golden_result_too_but_its_body_is_not_kept(curation: Path) -> None:
    code, _, err = record(curation, "get_item", '{"sku": "SKU-9"}', "unknown")
    assert code == 1 and "404 Not Found" in err
    data = json.loads((curation.parent / "fixtures" / "get_item" / "unknown.json").read_text())
    assert data["response"] == {"status": 404, "reason": "Not Found",
                                "headers": {"content-type": "application/json"}, "text": ""}
    assert data["result"]["error"].startswith("The backend answered 404 Not Found")
    code, out, _ = run("test", "--config", str(curation))
    assert code == 0 and "unknown.json: ok" in out


def test_a_text_answer_is_recorded_as_text(curation: Path) -> None:
    code, out, err = record(curation, "stock_report", "{}", "csv")
    assert code == 0, err
    data = json.loads((curation.parent / "fixtures" / "stock_report" / "csv.json").read_text())
    assert data["response"]["text"] + "\n" == out and out.startswith("sku,")
    assert data["result"]["structured"] is None and data["result"]["content"]
    assert run("test", "--config", str(curation))[0] == 0


def test_a_curation_change_shows_as_a_diff_and_update_accepts_it(curation: Path) -> None:
    code, _, err = record(curation, "list_items", '{"limit": 2}', "two")
    assert code == 0, err
    curation.write_text(curation.read_text().replace('"items[].stock"', '"items[].name"'))
    code, out, _ = run("test", "--config", str(curation))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("list_items/two.json: the result differs from the golden one")
    assert "  --- golden" in lines and "  +++ now" in lines
    assert '  -        "stock": 14' in lines and '  +        "name": "Cordless drill",' in lines
    assert lines[-1] == "1 fixture(s): 0 ok, 1 failed"
    code, out, _ = run("test", "--update", "--config", str(curation))
    assert code == 0 and out.splitlines() == [
        f"{_rel(curation.parent / 'fixtures/list_items/two.json')}: golden result updated",
        "1 fixture(s): 0 ok, 1 updated"]
    assert run("test", "--config", str(curation))[0] == 0


def test_a_renamed_argument_breaks_the_recorded_call(curation: Path) -> None:
    assert record(curation, "get_item", '{"sku": "SKU-1042"}', "drill")[0] == 0
    curation.write_text(curation.read_text().replace("rename: sku", "rename: item_sku"))
    code, out, _ = run("test", "--config", str(curation))
    assert code == 1
    assert '+  "error": "Invalid arguments for get_item: unknown argument(s) \'sku\'' in out


@pytest.mark.parametrize(("edit", "problem"), [
    ("curation", "the curation has no tool 'get_item' any more"),
    ("fixture", "get_item now calls GET /items/{itemId}, not GET /items/{itemId}/stock as "
     "recorded: record it again"),
], ids=["tool-removed", "operation-changed"])
def test_fixtures_that_no_longer_fit_the_curation_fail(
        curation: Path, edit: str, problem: str) -> None:
    assert record(curation, "get_item", '{"sku": "SKU-1042"}', "drill")[0] == 0
    if edit == "curation":
        curation.write_text(curation.read_text().replace("get_item:", "fetch_item:"))
    else:  # as if recorded while the tool was bound to another operation
        path = curation.parent / "fixtures" / "get_item" / "drill.json"
        path.write_text(path.read_text().replace('"GET /items/{itemId}"',
                                                 '"GET /items/{itemId}/stock"'))
    code, out, _ = run("test", "--update", "--config", str(curation))
    assert code == 1
    assert f"drill.json: cannot replay: {problem}" in out


def test_replay_needs_no_backend_and_no_credentials(
        curation: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert record(curation, "get_item", '{"sku": "SKU-1042"}', "drill")[0] == 0
    monkeypatch.setenv("INVENTORY_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.delenv("INVENTORY_TOKEN")
    code, out, err = run("test", "--config", str(curation))
    assert code == 0, out + err


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "cannot read it: "),
    ('{"tool": "get_item"}', "not a fixture (no \"format\": 'facade-fixture')"),
    ('{"format": "facade-fixture", "version": 7}', "fixture version 7; this facade reads "
     "version 1"),
    ('{"format": "facade-fixture", "version": 1, "tool": "get_item"}',
     "malformed fixture: KeyError 'response'"),
], ids=["not-json", "not-a-fixture", "future-version", "incomplete"])
def test_unreadable_fixtures_are_reported_one_line_each(
        curation: Path, content: str, problem: str) -> None:
    path = curation.parent / "fixtures" / "get_item" / "bad.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    code, out, _ = run("test", "--config", str(curation))
    assert code == 1
    assert out.splitlines()[0].startswith(f"{_rel(path)}: cannot replay: {problem}")


def test_no_fixtures_is_a_failure_with_a_hint(curation: Path) -> None:
    code, _, err = run("test", "--config", str(curation))
    assert code == 1
    assert "no fixtures under" in err and "--record NAME" in err


def test_nothing_is_recorded_when_no_request_was_sent(curation: Path) -> None:
    code, _, err = record(curation, "get_item", '{"sku": "bad/sku"}', "bad")
    assert code == 1
    assert "bad.json: nothing to record: no answer came back from the backend (Invalid " \
        "arguments for get_item" in err
    assert not (curation.parent / "fixtures").exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", ""], ids=str)
def test_fixture_names_cannot_leave_the_folder(curation: Path, name: str) -> None:
    code, _, err = record(curation, "get_item", '{"sku": "SKU-1042"}', name)
    assert code == 2 and "--record" in err


def test_fixtures_folder_option(curation: Path, tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    code, _, err = run("call", "get_item", "--args", '{"sku": "SKU-1042"}', "--record", "x",
                       "--fixtures", str(folder), "--config", str(curation))
    assert code == 0, err
    assert (folder / "get_item" / "x.json").is_file()
    assert run("test", "--fixtures", str(folder), "--config", str(curation))[0] == 0


async def test_recording_decodes_compressed_answers_and_scrubs_echoed_secrets() -> None:
    register_secrets(["s3cret-echoed-token"])

    def backend(request: httpx.Request) -> httpx.Response:
        body = gzip.compress(b'{"echo": "Bearer s3cret-echoed-token", "n": 1}')
        return httpx.Response(200, content=body, headers={
            "content-type": "application/json", "content-encoding": "gzip",
            "set-cookie": "session=abc"})

    transport = RecordingTransport(1024, httpx.MockTransport(backend))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("http://backend.test/x")
    assert response.json() == {"echo": "Bearer s3cret-echoed-token", "n": 1}
    assert transport.last is not None
    status, _, headers, body = transport.last
    assert status == 200 and headers == {"content-type": "application/json"}
    from facade.curate.fixtures import recorded_fixture

    class Result:
        is_error, content, structured_content = False, [], {"n": 1}

    fixture = recorded_fixture("t", "GET /x", {}, transport, Result())
    assert b"s3cret" not in fixture.body and b"Bearer ***" in fixture.body


async def test_recording_caps_the_body_just_past_the_limit() -> None:
    transport = RecordingTransport(10, httpx.MockTransport(
        lambda request: httpx.Response(200, content=b"x" * 100)))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://backend.test/x")
    assert transport.last is not None and transport.last[3] == b"x" * 11


def _rel(path: Path) -> str:
    import os

    return os.path.relpath(path)
