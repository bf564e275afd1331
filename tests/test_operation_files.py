"""Operations that are `$ref`s to files of their own, as in multi-file specs: looking one
up by operationId parses only the files that could hold it, and finds what a full read
would (ambiguity, escapes, suggestions)."""

from __future__ import annotations

from pathlib import Path

import yaml

import facade
from facade.errors import LoadError
from facade.loading.spec import load_spec


def op_file(op_id: str) -> str:
    return yaml.safe_dump({"operationId": op_id, "summary": f"The {op_id} operation",
                           "responses": {"200": {"description": "ok"}}})


def multi_file_spec(tmp_path: Path, operations: dict[str, str]) -> Path:
    """A root document whose GET operations are each `$ref`s to `ops/<file>`."""
    (tmp_path / "ops").mkdir(exist_ok=True)
    paths = {}
    for i, (file, text) in enumerate(operations.items()):
        (tmp_path / "ops" / file).write_text(text)
        paths[f"/things{i}"] = {"get": {"$ref": f"ops/{file}"}}
    root = tmp_path / "openapi.yaml"
    root.write_text(yaml.safe_dump({"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
                                    "paths": paths}))
    return root


def test_finding_an_id_parses_only_the_files_that_could_hold_it(tmp_path: Path) -> None:
    names = [f"op_{i:02d}" for i in range(40)]
    root = multi_file_spec(tmp_path, {f"{n}.yaml": op_file(n) for n in names})
    spec = load_spec(root)
    found = spec.find("op_07")
    assert found is not None and not isinstance(found, list)
    assert found.path == "/things7"
    read = {p.name for p in spec.resolver.files}
    assert read == {"openapi.yaml", "op_07.yaml"}
    # A second lookup reads its own file only, and the first stays found.
    assert spec.find("op_33").path == "/things33"  # type: ignore[union-attr]
    assert len(spec.resolver.files) == 3
    assert spec.find("op_07") == found


def test_an_id_in_two_files_is_still_ambiguous(tmp_path: Path) -> None:
    root = multi_file_spec(tmp_path, {"a.yaml": op_file("listThings"),
                                      "b.yaml": op_file("other"),
                                      "c.yaml": op_file("listThings")})
    found = load_spec(root).find("listThings")
    assert isinstance(found, list) and [r.path for r in found] == ["/things0", "/things2"]


def test_an_id_spelled_with_escapes_or_behind_another_ref_is_found(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "real.yaml").write_text(op_file("hidden"))
    root = multi_file_spec(tmp_path, {
        "escaped.yaml": 'operationId: "\\x65scaped"\nresponses: {"200": {description: ok}}\n',
        "pointer.yaml": "$ref: real.yaml\n",
        "plain.yaml": op_file("plain")})
    spec = load_spec(root)
    assert spec.find("escaped").path == "/things0"  # type: ignore[union-attr]
    assert spec.find("hidden").path == "/things1"  # type: ignore[union-attr]
    assert spec.find("plain").path == "/things2"  # type: ignore[union-attr]


def test_an_unknown_id_is_suggested_from_files_not_read_yet(tmp_path: Path) -> None:
    root = multi_file_spec(tmp_path, {f"{n}.yaml": op_file(n)
                                      for n in ("listWidgets", "getWidget", "listGadgets")})
    config = tmp_path / "curation.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1, "spec": "openapi.yaml", "backend": {"base_url": "http://127.0.0.1:9"},
        "tools": {"widgets": {"operation": "listWidget"}}}))
    try:
        facade.load(config)
    except LoadError as exc:
        assert "did you mean 'listWidgets'" in str(exc), str(exc)
    else:
        raise AssertionError("an unknown operationId loaded")
