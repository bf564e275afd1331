"""Settings that contradict each other, or the spec, are found by `facade check`: a field
both included and redacted (error), a description over the cap (error), a default that
differs from the spec's (warning)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from facade.cli import main
from facade.loading.lint import MAX_DESCRIPTION_BYTES

HERE = Path(__file__).resolve().parent
MODELS_FILES = HERE / "data" / "problems" / "models-files.yaml"
FIX = ("(remove it from `include`, or narrow the redaction: redaction wins, so the field "
       "never reaches the agent)")


def check(path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """`facade check` as a curator runs it, from the curation's folder."""
    monkeypatch.chdir(path.parent)
    result = CliRunner().invoke(main, ["check", *args, "--config", path.name])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def models_files(tmp_path: Path, text: str, spec: Path = MODELS_FILES) -> Path:
    shutil.copy(spec, tmp_path / "models-files.yaml")
    path = tmp_path / "curation.yaml"
    path.write_text("version: 1\nspec: models-files.yaml\n"
                    'backend: {base_url: "http://127.0.0.1:9/v1"}\n'
                    + textwrap.dedent(text).lstrip("\n"))
    return path


# -- include against redact ----------------------------------------------------------------

def test_an_included_field_that_a_redaction_removes_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = models_files(tmp_path, """
        redact: ["*_url", internal_cost]
        tools:
          list_files:
            operation: listFiles
            response:
              include: ["data[].filename", "data[].download_url", first_id, data.status_details]
              redact: ["FIRST_*", "data.status_details"]
        """)
    code, out, err = check(path, monkeypatch)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "curation.yaml:9:36: tools.list_files.response.include[1]: 'data[].download_url' is "
        "included, but the redact glob '*_url' at redact[0] (line 4) removes 'download_url' "
        f"from the results of every tool {FIX}",
        "curation.yaml:9:59: tools.list_files.response.include[2]: 'first_id' is included, "
        "but the redact glob 'FIRST_*' at tools.list_files.response.redact[0] (line 10) "
        f"removes 'first_id' from the results of this tool {FIX}",
        "curation.yaml:9:69: tools.list_files.response.include[3]: 'data.status_details' is "
        "included, but the redact path 'data.status_details' at "
        "tools.list_files.response.redact[1] (line 10) removes 'data.status_details' from "
        f"the results of this tool {FIX}",
        "3 problem(s) found.",
    ]


def test_including_a_parent_of_what_is_redacted_is_no_conflict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep the list, remove one field of each entry: what redaction is for.
    path = models_files(tmp_path, """
        redact: ["*_url"]
        tools:
          list_files:
            operation: listFiles
            response:
              include: [data, has_more]
              redact: [data.status_details]
        """)
    code, out, err = check(path, monkeypatch)
    assert (code, err) == (0, "")
    assert out.startswith("curation.yaml: ok, 1 tool(s)")


def test_a_glob_that_removes_a_parent_of_an_included_field_conflicts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = models_files(tmp_path, """
        redact: [dat?]
        tools:
          list_models:
            operation: listModels
            response: {include: ["data[].id"]}
        """)
    code, _, err = check(path, monkeypatch)
    assert code == 1
    assert err.splitlines()[0] == (
        "curation.yaml:8:26: tools.list_models.response.include[0]: 'data[].id' is included, "
        "but the redact glob 'dat?' at redact[0] (line 4) removes 'data' from the results of "
        f"every tool {FIX}")


# -- the cap on descriptions -----------------------------------------------------------------

def test_a_description_over_the_cap_is_an_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    huge = "Lists models. " * (1024 * 1024 // 14)  # about 1 MB, as a curator once pasted
    long = "x" * (MAX_DESCRIPTION_BYTES + 1)
    just = "é" * (MAX_DESCRIPTION_BYTES // 2)  # 2 bytes each: exactly at the cap
    path = models_files(tmp_path, f"""
        tools:
          list_models:
            operation: listModels
            description: {huge}
          list_files:
            operation: listFiles
            description: {just}
            params:
              limit: {{description: {long}}}
        """)
    code, out, err = check(path, monkeypatch)
    assert code == 1 and out == ""
    size = len(huge.strip().encode())
    assert err.splitlines() == [
        f"curation.yaml:7:18: tools.list_models.description: the description is {size:,} "
        "bytes, over the 8 KB (8,192 bytes) cap on descriptions (every description is sent "
        "with every tools/list: keep what the model needs to choose the tool)",
        "curation.yaml:12:28: tools.list_files.params.limit.description: the description is "
        "8,193 bytes, over the 8 KB (8,192 bytes) cap on descriptions (every description is "
        "sent with every tools/list: keep what the model needs to fill in the argument)",
        "2 problem(s) found.",
    ]


def test_a_spec_description_over_the_cap_asks_for_a_curated_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = yaml.safe_load(MODELS_FILES.read_text())
    files = spec["paths"]["/files"]["get"]
    files["description"] = "Returns files. " * 600  # 9,000 bytes
    files["parameters"][1]["description"] = "Sort order. " * 700
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(spec))
    path = models_files(tmp_path, """
        tools:
          list_files: {operation: listFiles}
        """, spec=tmp_path / "big.yaml")
    code, _, err = check(path, monkeypatch)
    assert code == 1
    assert err.splitlines() == [
        "curation.yaml:5:27: tools.list_files.operation: the spec's description of query "
        "parameter 'order' is 8,400 bytes, over the 8 KB (8,192 bytes) cap on descriptions "
        "(write a shorter one at tools.list_files.params.order.description)",
        "curation.yaml:5:27: tools.list_files.operation: the description the spec gives "
        "(its summary and description) is 9,025 bytes, over the 8 KB (8,192 bytes) cap on "
        "descriptions (write a shorter `description` for the tool)",
        "2 problem(s) found.",
    ]
    # What the message asks for makes the curation load.
    path.write_text(path.read_text().replace(
        "{operation: listFiles}", "{operation: listFiles, description: Lists files., "
        "params: {order: {description: Sort order.}}}"))
    code, out, err = check(path, monkeypatch)
    assert (code, err) == (0, "")


# -- defaults against the spec ---------------------------------------------------------------

def test_a_default_that_differs_from_the_spec_is_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = models_files(tmp_path, """
        tools:
          list_files:
            operation: listFiles
            params:
              limit: {default: 20}
              order: {default: desc}
        """)
    code, out, err = check(path, monkeypatch)
    assert code == 0
    assert out.startswith("curation.yaml: ok, 1 tool(s)")
    warning = ("curation.yaml:8:24: warning: tools.list_files.params.limit.default: default "
               "20 differs from the default 10000 the spec documents for query parameter "
               "'limit' (facade sends 20 when the agent leaves it out; if that is meant, say "
               "so in the description, else remove `default`)")
    assert err.splitlines() == [warning]  # `order` repeats the spec's default: nothing said

    code, _, err = check(path, monkeypatch, "--strict")
    assert code == 1
    assert err.splitlines() == [warning, "1 warning(s), which --strict treats as errors."]
