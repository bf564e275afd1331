"""Load-time errors are the curator's user interface: pin their exact text."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from facade import CurationError, LoadError, SpecError, load

Write = Callable[..., Path]

HEAD = """\
version: 1
spec: specs/inventory.yaml
backend: {base_url: "http://127.0.0.1:9/v1"}
"""


def _problems(path: Path) -> list[str]:
    """Load as a curator would, from the curation's folder, and return the error lines."""
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        with pytest.raises(LoadError) as info:
            load(path.name)
    finally:
        os.chdir(here)
    return str(info.value).splitlines()


def test_shape_errors_are_all_reported(write_curation: Write) -> None:
    path = write_curation(HEAD + """\
read_only: "yes"
redact: password
tools:
  Get-Item:
    operation: getItem
  list_items:
    operation: listItems
    descriptoin: typo
    params:
      limit: {default: 5, hidden: true}
""")
    assert _problems(path) == [
        "curation.yaml:4:12: read_only: Input should be a valid boolean",
        "curation.yaml:5:9: redact: Input should be a valid list",
        "curation.yaml:7:3: tools.Get-Item: invalid name 'Get-Item': string should match "
        "pattern '^[a-z][a-z0-9_]{0,63}$' (tool names are snake_case: "
        "^[a-z][a-z0-9_]{0,63}$)",
        "curation.yaml:11:5: tools.list_items.descriptoin: unknown key 'descriptoin' "
        "(did you mean 'description'?)",
        "curation.yaml:13:14: tools.list_items.params.limit: a fixed or hidden parameter is "
        "not shown, so it takes no rename, description or default",
    ]


def test_cross_reference_errors_are_all_reported(write_curation: Write) -> None:
    path = write_curation(HEAD + """\
tools:
  get_item:
    operation: getItm
  get_stock:
    operation: getItemStock
    params:
      itemID: {rename: sku}
  delete_item:
    operation: deleteItem
  get_category:
    operation: getCategory
    response:
      include: [nmae]
  list_items:
    operation: listItems
    params:
      limit: {value: "twenty"}
      in_stock: {rename: tags}
      tag: {rename: tags}
""")
    assert _problems(path) == [
        "curation.yaml:6:16: tools.get_item.operation: unknown operation 'getItm' in "
        "specs/inventory.yaml (did you mean 'getItem' or 'getItemStock'?)",
        "curation.yaml:10:7: tools.get_stock.params.itemID: unknown parameter 'itemID' "
        "(did you mean 'itemId'?)",
        "curation.yaml:12:16: tools.delete_item.operation: DELETE /items/{itemId} is not "
        "read-only: a read-only façade serves only GET and HEAD (remove this tool, or set "
        "`read_only: false` at the top)",
        "curation.yaml:16:17: tools.get_category.response.include[0]: 'nmae' is not in the "
        "response schema (did you mean 'name'?)",
        "curation.yaml:20:22: tools.list_items.params.limit.value: value 'twenty' does not "
        "fit query parameter 'limit': 'twenty' is not of type 'integer'",
        "curation.yaml:21:17: tools.list_items.params.in_stock: argument name 'tags' is used "
        "by both query parameter 'tag' and query parameter 'in_stock' (rename one: params: "
        "{in_stock: {rename: ...}})",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nversion: 1\n", r"^curation\.yaml:2:1: version: duplicate key 'version' \(first "
         r"defined at line 1; remove one of them\)$"),
        ("a:\n\tb: 1\n", r"^curation\.yaml:2:1: YAML syntax error: .* \(YAML indentation "
         r"must use spaces, not tabs\)$"),
        ("", r"^curation\.yaml: the file is empty \(start from `facade init --spec PATH`\)$"),
        ("- a\n- b\n", r"^curation\.yaml:1:1: the top level must be a mapping$"),
        ("a: &a [1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
         "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
         r"expands to more than 200000 nodes"),
        ('include: [items[].id]\n', r"quote paths with \[\] inside a \[\.\.\.\] list"),
    ],
    ids=["duplicate-key", "tab", "empty", "not-a-mapping", "alias-bomb", "unquoted-brackets"],
)
def test_yaml_problems_are_one_clear_line(write_curation: Write, text: str, message: str
                                          ) -> None:
    path = write_curation(text)
    (line,) = _problems(path)
    assert re.search(message, line), line


def test_yaml_11_trap_gets_a_quote_hint(write_curation: Write) -> None:
    path = write_curation(HEAD + "tools:\n  get_item:\n    operation: no\n")
    assert _problems(path) == [
        'curation.yaml:6:16: tools.get_item.operation: Input should be a valid string (YAML '
        'read this as bool; quote the value, e.g. "no")'
    ]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CurationError, match=r"nope\.yaml: file not found"):
        load(tmp_path / "nope.yaml")
    with pytest.raises(CurationError, match=r"is a directory, not a YAML file"):
        load(tmp_path)


def test_non_utf8_file_names_the_position(tmp_path: Path) -> None:
    path = tmp_path / "curation.yaml"
    path.write_bytes(b"version: 1\nspec: \xff\n")
    with pytest.raises(CurationError, match=r"curation\.yaml:2:7: the file is not valid UTF-8"):
        load(path)


def test_missing_spec_points_at_the_spec_key(write_curation: Write) -> None:
    path = write_curation("version: 1\nspec: nowhere.yaml\nbackend: {base_url: "
                          "'http://127.0.0.1:9'}\ntools:\n  a:\n    operation: x\n")
    assert _problems(path) == ["curation.yaml:2:7: spec: spec file 'nowhere.yaml' not found "
                               "(`spec` is relative to the curation file)"]


def test_swagger_1_2_is_refused_by_name(write_curation: Write, tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text("swagger: '1.2'\ninfo: {title: x, version: '1'}\n")
    path = write_curation("version: 1\nspec: old.yaml\nbackend: {base_url: "
                          "'http://127.0.0.1:9'}\ntools:\n  a:\n    operation: x\n")
    with pytest.raises(SpecError, match=r"old\.yaml: #/swagger: Swagger 1\.2 documents are "
                       r"not supported; facade reads Swagger 2\.0, OpenAPI 3\.0 and 3\.1$"):
        load(path)


def test_swagger_2_without_a_3_0_equivalent_is_refused_where_curated(
        write_curation: Write, tmp_path: Path) -> None:
    """Swagger 2.0 is converted as it loads; what OpenAPI 3 cannot express is named."""
    (tmp_path / "old.yaml").write_text(
        "swagger: '2.0'\ninfo: {title: x, version: '1'}\npaths:\n  /a:\n    get:\n"
        "      operationId: getA\n      parameters:\n        - {name: q, in: query, "
        "type: array, items: {type: string}, collectionFormat: tsv}\n"
        "      responses: {200: {description: ok}}\n")
    path = write_curation("version: 1\nspec: old.yaml\nbackend: {base_url: "
                          "'http://127.0.0.1:9'}\ntools:\n  a:\n    operation: getA\n")
    assert _problems(path) == [
        "curation.yaml:6:16: tools.a.operation: old.yaml: #/paths/~1a/get/parameters/0 "
        "collectionFormat 'tsv' of query parameter 'q' (tab-separated) has no OpenAPI 3 "
        "equivalent (use csv, ssv, pipes or multi in the spec, or do not curate this "
        "operation)"]


def test_unset_env_var_in_base_url(write_curation: Write, monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    monkeypatch.delenv("NO_SUCH_FACADE_VAR", raising=False)
    path = write_curation("version: 1\nspec: specs/inventory.yaml\nbackend:\n  base_url: "
                          "${NO_SUCH_FACADE_VAR}\ntools:\n  get_item:\n    operation: getItem\n"
                          "    params: {X-Tenant: {value: a}}\n")
    assert _problems(path) == [
        "curation.yaml:4:13: backend.base_url: environment variable 'NO_SUCH_FACADE_VAR' is "
        "not set (export NO_SUCH_FACADE_VAR=… or write ${NO_SUCH_FACADE_VAR:-default})"
    ]


def test_env_default_expands(write_curation: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_FACADE_VAR", raising=False)
    path = write_curation("version: 1\nspec: specs/inventory.yaml\nbackend:\n  base_url: "
                          "${NO_SUCH_FACADE_VAR:-http://127.0.0.1:7/v1/}\ntools:\n  get_item:\n"
                          "    operation: getItem\n")
    assert load(path).backend.base_url == "http://127.0.0.1:7/v1"


def test_required_parameter_cannot_be_hidden(write_curation: Write) -> None:
    path = write_curation(HEAD + "tools:\n  get_item:\n    operation: getItem\n    params:\n"
                          "      X-Tenant: {hidden: true}\n")
    assert _problems(path) == [
        "curation.yaml:8:17: tools.get_item.params.X-Tenant: header parameter 'X-Tenant' is "
        "required and cannot be hidden (give it a fixed `value` instead)"
    ]


@pytest.mark.parametrize(("url", "message"), [
    ("https://user:pa55word@api.test/v1", "backend.base_url: credentials in the URL are not "
     "allowed (use backend.auth with an env var name)"),
    ("https://api.test/v1?api_key=${KEY}", "backend.base_url: a query string or fragment in "
     "the URL is not allowed: it can carry credentials, and facade builds each request's "
     "query from the operation (for an API key use backend.auth with api_key_env and header: "
     "facade sends keys in a header, never in the query; a fixed query parameter goes in "
     "tools.<name>.params.<p>.value)"),
    ("https://api.test/v1#k=${KEY}", "backend.base_url: a query string or fragment in "
     "the URL is not allowed: it can carry credentials, and facade builds each request's "
     "query from the operation (for an API key use backend.auth with api_key_env and header: "
     "facade sends keys in a header, never in the query; a fixed query parameter goes in "
     "tools.<name>.params.<p>.value)"),
])
def test_credentials_in_base_url_are_refused(write_curation: Write,
                                             monkeypatch: pytest.MonkeyPatch, url: str,
                                             message: str) -> None:
    monkeypatch.setenv("KEY", "k3y-value-never-echoed")
    path = write_curation(f"version: 1\nspec: specs/inventory.yaml\nbackend:\n  base_url: "
                          f"\"{url}\"\ntools:\n  get_item: {{operation: getItem}}\n")
    problems = _problems(path)
    assert problems == [f"curation.yaml:4:13: {message}"]
    assert not any("k3y-value" in p or "pa55word" in p for p in problems)
