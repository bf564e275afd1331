"""Output for people: a table, color and progress on a terminal; plain text for pipes and CI."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from facade.cli import main, terminal

ROOT = Path(__file__).resolve().parent.parent
CURATION = str(ROOT / "curation.yaml")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


def test_tools_is_a_plain_table_when_piped() -> None:
    code, out, err = run("tools", "--config", CURATION)
    assert code == 0 and err == ""
    assert not ANSI.search(out)
    lines = out.splitlines()
    assert re.split(r"\s*\|\s*", lines[0]) == ["tool", "HTTP operation", "arguments",
                                               "read-only", "size"]
    rows = {line.split()[0]: re.split(r"\s*\|\s*", line) for line in lines[2:-1]}
    assert rows["get_item"][:4] == ["get_item", "GET /items/{itemId}", "sku", "yes"]
    assert rows["list_items"][2] == "tags?, in_stock?, limit?, cursor?"  # one line, for grep
    assert re.fullmatch(r"\d+ B", rows["get_item"][4])
    assert lines[-1].startswith("4 tool(s), tools/list is ")


def test_tools_json_is_unchanged_by_the_table() -> None:
    code, out, err = run("tools", "--json", "--config", CURATION)
    assert code == 0
    listing = json.loads(out)
    assert out == json.dumps(listing, ensure_ascii=False, indent=2) + "\n"
    compact = json.dumps(listing, ensure_ascii=False, separators=(",", ":"))
    assert err == f"{len(compact.encode())} bytes\n"


PROBLEMS = [
    "curation.yaml:6:16: tools.a.operation: unknown operation 'getItm' (did you mean 'getItem'?)",
    "curation.yaml:9:3: warning: tools.b: something to look at",
    "2 problem(s) found.",
]


def test_problems_are_plain_when_not_a_terminal() -> None:
    out = io.StringIO()
    terminal.print_lines(out, PROBLEMS)
    assert out.getvalue() == "\n".join(PROBLEMS) + "\n"


def test_problems_are_colored_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = TTY()
    terminal.print_lines(out, PROBLEMS)
    text = out.getvalue()
    assert ANSI.search(text)
    assert ANSI.sub("", text).splitlines() == PROBLEMS  # the same words, only styled


def test_no_color_means_no_escape_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = TTY()
    terminal.print_lines(out, PROBLEMS)
    assert out.getvalue() == "\n".join(PROBLEMS) + "\n"
    table = TTY()
    terminal.table(table, [terminal.Column("a"), terminal.Column("b")], [["1", "2"]], "done")
    assert not ANSI.search(table.getvalue()) and "done" in table.getvalue()


def test_check_output_is_plain_under_the_cli_runner() -> None:
    code, out, err = run("check", "--config", CURATION)
    assert code == 0 and err == ""
    assert out.startswith(f"{CURATION}: ok, 4 tool(s) over ") and not ANSI.search(out)


def _big_spec(tmp_path: Path) -> Path:
    spec = {"openapi": "3.0.3", "info": {"title": "Big", "version": "1",
                                         "description": "x" * 1_200_000},
            "paths": {"/a": {"get": {"operationId": "getA", "responses": {"200": {
                "description": "ok"}}}}}}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(spec))
    return path


def test_init_on_a_big_spec_is_quiet_when_not_interactive(tmp_path: Path) -> None:
    code, _, err = run("init", "--spec", str(_big_spec(tmp_path)), "-o",
                       str(tmp_path / "curation.yaml"))
    assert code == 0
    assert err == f"wrote {tmp_path / 'curation.yaml'}: uncomment a few tools, then run " \
                  f"`facade check`\nwrote {tmp_path / 'schema' / 'curation.schema.json'}: " \
                  "completion and checks for curation.yaml in editors\n"


def test_init_on_a_big_spec_shows_progress_when_interactive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminal, "interactive", lambda stream: True)
    code, out, err = run("init", "--spec", str(_big_spec(tmp_path)), "-o",
                         str(tmp_path / "curation.yaml"))
    assert code == 0 and out == ""
    assert "Reading " in err and "(1.2 MB)" in err
