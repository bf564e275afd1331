"""Swagger 2.0 documents load, converted to OpenAPI 3.0 in memory (`facade.loading.swagger2`), or
are refused with the file, JSON pointer and reason for what cannot be converted.

- a table of hand-written 2.0 snippets and the 3.0 they become;
- a table of the constructs that cannot be converted, and their exact issue;
- a multi-file 2.0 petstore (tests/data/swagger2/petstore): refs into other files keep
  their file part and have their pointers rewritten, and the files are converted in place;
- every 2.0 document of the real-world corpus (all small, so copied into tests/data/)
  converts to a valid OpenAPI 3.0 document, once
  per load, fast;
- end to end: the 2.0 petstore's curated tools called through an in-memory fastmcp
  Client against a backend on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from click.testing import CliRunner
from fastmcp import Client
from openapi_spec_validator.validation import OpenAPIV30SpecValidator

import facade
import facade.loading.spec
from facade import build_server, load
from facade.cli import main
from facade.errors import SpecError
from facade.loading.refs import read_document
from facade.loading.spec import load_spec
from facade.loading.swagger2 import Conversion, Issue, convert

from conftest import VENDORED_SPECS

DATA = Path(__file__).resolve().parent / "data" / "swagger2" / "petstore"
PETSTORE = DATA / "swagger.yaml"
# Every 2.0 document of the corpus is small, so all of them are copied into the repository.
CORPUS = VENDORED_SPECS
OAI = CORPUS / "OAI__OpenAPI-Specification@fad4c13" / "examples" / "v2.0"
CORPUS_2_0 = {
    "readme-petstore": CORPUS / "readmeio__oas-examples@060d4ff/2.0/yaml/petstore.yaml",
    "uber": OAI / "yaml/uber.yaml",
    "petstore-expanded": OAI / "json/petstore-expanded.json",
    "petstore-separate": OAI / "json/petstore-separate/spec/swagger.json",
    "petstore-with-external-docs": OAI / "yaml/petstore-with-external-docs.yaml",
    "petstore": OAI / "json/petstore.json",
    "petstore-minimal": OAI / "yaml/petstore-minimal.yaml",
}
BIGGEST_2_0 = CORPUS_2_0["readme-petstore"]
INFO = {"title": "t", "version": "1"}


def _convert(doc: dict[str, Any]) -> Conversion:
    return convert(Path("/specs/spec.yaml"), {"swagger": "2.0", "info": INFO, **doc},
                   display="spec.yaml")


def _op(*params: dict[str, Any], **op: Any) -> dict[str, Any]:
    """A document with one operation, GET /a, holding `params` and `op`'s keys."""
    return {"paths": {"/a": {"get": {"parameters": list(params),
                                     "responses": {"200": {"description": "ok"}}, **op}}}}


def _at(data: Any, *path: str | int) -> Any:
    for key in path:
        data = data[key]
    return data


GET = ("paths", "/a", "get")
ARRAY = {"type": "array", "items": {"type": "string"}}
PET = {"type": "object", "properties": {"id": {"type": "integer"}}}

# name → (2.0 snippet, where to look in the 3.0 document, what must be there)
CONVERSIONS: dict[str, tuple[dict[str, Any], tuple[str | int, ...], Any]] = {
    "servers-from-host-basepath-schemes": (
        {"host": "api.example.com", "basePath": "/v1", "schemes": ["http", "https"],
         "paths": {}}, ("servers",),
        [{"url": "http://api.example.com/v1"}, {"url": "https://api.example.com/v1"}]),
    "servers-without-schemes-are-scheme-relative": (
        {"host": "api.example.com", "paths": {}}, ("servers",), [{"url": "//api.example.com"}]),
    "servers-from-basepath-alone": ({"basePath": "/v1", "paths": {}}, ("servers",),
                                    [{"url": "/v1"}]),
    "query-array-defaults-to-csv": (
        _op({"name": "q", "in": "query", **ARRAY}), (*GET, "parameters", 0),
        {"name": "q", "in": "query", "style": "form", "explode": False, "schema": ARRAY}),
    "query-ssv": (
        _op({"name": "q", "in": "query", **ARRAY, "collectionFormat": "ssv"}),
        (*GET, "parameters", 0),
        {"name": "q", "in": "query", "style": "spaceDelimited", "explode": False,
         "schema": ARRAY}),
    "query-pipes": (
        _op({"name": "q", "in": "query", **ARRAY, "collectionFormat": "pipes"}),
        (*GET, "parameters", 0),
        {"name": "q", "in": "query", "style": "pipeDelimited", "explode": False,
         "schema": ARRAY}),
    "query-multi": (
        _op({"name": "q", "in": "query", **ARRAY, "collectionFormat": "multi"}),
        (*GET, "parameters", 0),
        {"name": "q", "in": "query", "style": "form", "explode": True, "schema": ARRAY}),
    "header-csv": (
        _op({"name": "X-Ids", "in": "header", **ARRAY, "collectionFormat": "csv"}),
        (*GET, "parameters", 0),
        {"name": "X-Ids", "in": "header", "style": "simple", "explode": False,
         "schema": ARRAY}),
    "parameter-keywords-move-into-the-schema": (
        _op({"name": "n", "in": "query", "description": "How many.", "required": True,
             "allowEmptyValue": True, "type": "integer", "format": "int32", "minimum": 1,
             "maximum": 9, "exclusiveMaximum": True, "default": 2, "enum": [1, 2],
             "multipleOf": 1, "x-example": 2, "x-internal": "yes"}),
        (*GET, "parameters", 0),
        {"name": "n", "in": "query", "description": "How many.", "required": True,
         "allowEmptyValue": True, "example": 2, "x-internal": "yes", "x-example": 2,
         "schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 9,
                    "exclusiveMaximum": True, "default": 2, "enum": [1, 2],
                    "multipleOf": 1}}),
    "body-parameter-becomes-request-body": (
        _op({"name": "pet", "in": "body", "description": "The pet.", "required": True,
             "schema": PET, "x-body-note": 1},
            consumes=["application/json", "application/xml"]),
        (*GET, "requestBody"),
        {"description": "The pet.", "required": True, "x-body-note": 1,
         "content": {"application/json": {"schema": PET},
                     "application/xml": {"schema": PET}}}),
    "body-without-consumes-is-json": (
        _op({"name": "pet", "in": "body", "schema": PET}), (*GET, "requestBody"),
        {"content": {"application/json": {"schema": PET}}}),
    "global-consumes-apply": (
        {"consumes": ["application/vnd.api+json"],
         **_op({"name": "pet", "in": "body", "schema": PET})}, (*GET, "requestBody"),
        {"content": {"application/vnd.api+json": {"schema": PET}}}),
    "form-fields-become-a-form-body": (
        _op({"name": "name", "in": "formData", "type": "string", "required": True,
             "description": "New name."},
            {"name": "tags", "in": "formData", **ARRAY, "collectionFormat": "pipes"},
            consumes=["application/x-www-form-urlencoded"]),
        (*GET, "requestBody"),
        {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object", "required": ["name"], "properties": {
                "name": {"description": "New name.", "type": "string"}, "tags": ARRAY}},
            "encoding": {"tags": {"style": "pipeDelimited", "explode": False}}}}}),
    "a-file-field-makes-a-multipart-binary-form": (
        _op({"name": "photo", "in": "formData", "type": "file"}), (*GET, "requestBody"),
        {"content": {"multipart/form-data": {"schema": {
            "type": "object", "properties": {"photo": {"type": "string",
                                                       "format": "binary"}}}}}}),
    "response-schema-examples-headers": (
        _op(produces=["application/json", "text/csv"], responses={200: {
            "description": "ok", "schema": PET, "x-cache": "5m",
            "examples": {"application/json": {"id": 1}},
            "headers": {"X-Rate": {"type": "integer", "description": "Left."}}}}),
        (*GET, "responses"),
        {"200": {"description": "ok", "x-cache": "5m",
                 "headers": {"X-Rate": {"description": "Left.",
                                        "schema": {"type": "integer"}}},
                 "content": {"application/json": {"schema": PET, "example": {"id": 1}},
                             "text/csv": {"schema": PET}}}}),
    "response-without-schema-has-no-content": (
        _op(responses={"204": {"description": "gone"}}), (*GET, "responses"),
        {"204": {"description": "gone"}}),
    "definitions-become-component-schemas": (
        {"paths": {}, "definitions": {
            "Pet": {"type": "object", "discriminator": "kind", "properties": {
                "kind": {"type": "string"}, "photo": {"type": "file"},
                "tag": {"type": "string", "x-nullable": True},
                "owner": {"$ref": "#/definitions/Owner"},
                "friends": {"type": "array", "items": {"$ref": "#/definitions/Pet"}},
                "example": {"type": "object", "example": {"$ref": "kept as data"}}}},
            "Owner": {"allOf": [{"$ref": "#/definitions/Pet"}]}}},
        ("components", "schemas"),
        {"Pet": {"type": "object", "discriminator": {"propertyName": "kind"}, "properties": {
            "kind": {"type": "string"}, "photo": {"type": "string", "format": "binary"},
            "tag": {"type": "string", "x-nullable": True, "nullable": True},
            "owner": {"$ref": "#/components/schemas/Owner"},
            "friends": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}},
            "example": {"type": "object", "example": {"$ref": "kept as data"}}}},
         "Owner": {"allOf": [{"$ref": "#/components/schemas/Pet"}]}}),
    "global-parameters-become-components": (
        {"paths": {}, "parameters": {
            "Limit": {"name": "limit", "in": "query", "type": "integer"},
            "Pet": {"name": "pet", "in": "body", "schema": PET},
            "Field": {"name": "f", "in": "formData", "type": "string"}}},
        ("components",),
        {"parameters": {"Limit": {"name": "limit", "in": "query",
                                  "schema": {"type": "integer"}}},
         "requestBodies": {"Pet": {"content": {"application/json": {"schema": PET}}}}}),
    "parameter-refs-are-rewritten": (
        {"parameters": {"Limit": {"name": "limit", "in": "query", "type": "integer"}},
         **_op({"$ref": "#/parameters/Limit"})}, (*GET, "parameters"),
        [{"$ref": "#/components/parameters/Limit"}]),
    "a-shared-body-is-referred-to-when-consumes-match": (
        {"parameters": {"Pet": {"name": "pet", "in": "body", "schema": PET}},
         **_op({"$ref": "#/parameters/Pet"})}, (*GET, "requestBody"),
        {"$ref": "#/components/requestBodies/Pet"}),
    "a-shared-body-is-copied-when-consumes-differ": (
        {"parameters": {"Pet": {"name": "pet", "in": "body", "schema": PET}},
         **_op({"$ref": "#/parameters/Pet"}, consumes=["application/xml"])},
        (*GET, "requestBody"), {"content": {"application/xml": {"schema": PET}}}),
    "a-shared-form-field-is-copied-into-the-form": (
        {"parameters": {"F": {"name": "f", "in": "formData", "type": "string"}},
         **_op({"$ref": "#/parameters/F"})}, (*GET, "requestBody"),
        {"content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "properties": {"f": {"type": "string"}}}}}}),
    "a-shared-response-is-referred-to-when-produces-match": (
        {"responses": {"Gone": {"description": "gone"}},
         **_op(responses={"410": {"$ref": "#/responses/Gone"}})},
        (*GET, "responses", "410"), {"$ref": "#/components/responses/Gone"}),
    "a-shared-response-is-copied-when-produces-differ": (
        {"responses": {"Bad": {"description": "bad", "schema": PET}},
         **_op(produces=["text/plain"], responses={"400": {"$ref": "#/responses/Bad"}})},
        (*GET, "responses", "400"),
        {"description": "bad", "content": {"text/plain": {"schema": PET}}}),
    "security-definitions-become-schemes": (
        {"paths": {}, "securityDefinitions": {
            "basic": {"type": "basic", "description": "Staff."},
            "key": {"type": "apiKey", "name": "X-Key", "in": "header", "x-rotate": True},
            "implicit": {"type": "oauth2", "flow": "implicit",
                         "authorizationUrl": "https://a/auth", "scopes": {"r": "Read."}},
            "machines": {"type": "oauth2", "flow": "application",
                         "tokenUrl": "https://a/token"}}},
        ("components", "securitySchemes"),
        {"basic": {"type": "http", "scheme": "basic", "description": "Staff."},
         "key": {"type": "apiKey", "name": "X-Key", "in": "header", "x-rotate": True},
         "implicit": {"type": "oauth2", "flows": {"implicit": {
             "authorizationUrl": "https://a/auth", "scopes": {"r": "Read."}}}},
         "machines": {"type": "oauth2", "flows": {"clientCredentials": {
             "tokenUrl": "https://a/token", "scopes": {}}}}}),
    "path-level-parameters-stay-and-a-path-level-body-moves-down": (
        {"paths": {"/a/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "type": "string"},
                           {"name": "pet", "in": "body", "schema": PET}],
            "put": {"responses": {"200": {"description": "ok"}}}}}},
        ("paths", "/a/{id}"),
        {"parameters": [{"name": "id", "in": "path", "required": True,
                         "schema": {"type": "string"}}],
         "put": {"requestBody": {"content": {"application/json": {"schema": PET}}},
                 "responses": {"200": {"description": "ok"}}}}),
    "top-level-keys-and-extensions-are-kept": (
        {"paths": {}, "tags": [{"name": "pets"}], "security": [{"key": []}],
         "externalDocs": {"url": "https://docs"}, "x-logo": "logo.png"}, (),
        {"openapi": "3.0.3", "info": INFO, "paths": {}, "tags": [{"name": "pets"}],
         "security": [{"key": []}], "externalDocs": {"url": "https://docs"},
         "x-logo": "logo.png"}),
    "operation-keys-and-extensions-are-kept": (
        _op(operationId="getA", summary="S.", description="D.", tags=["t"],
            deprecated=True, security=[], externalDocs={"url": "u"}, schemes=["http"],
            **{"x-rate-limit": 5}), GET,
        {"operationId": "getA", "summary": "S.", "description": "D.", "tags": ["t"],
         "deprecated": True, "security": [], "externalDocs": {"url": "u"},
         "x-rate-limit": 5, "responses": {"200": {"description": "ok"}}}),
}


@pytest.mark.parametrize(("name", "snippet", "where", "expected"),
                         [(name, *case) for name, case in CONVERSIONS.items()],
                         ids=CONVERSIONS.keys())
def test_conversion(name: str, snippet: dict[str, Any], where: tuple[str | int, ...],
                    expected: Any) -> None:
    conversion = _convert(snippet)
    assert _at(conversion.document, *where) == expected
    # A file field converts, but facade cannot send it: see ISSUES["file-upload"].
    assert bool(conversion.issues) == (name == "a-file-field-makes-a-multipart-binary-form")


# name → (operation snippet, issue pointer, message, lossy)
POINTER = "#/paths/~1a/get"
ISSUES: dict[str, tuple[dict[str, Any], str, str, bool]] = {
    "tsv": (
        _op({"name": "q", "in": "query", **ARRAY, "collectionFormat": "tsv"}),
        f"{POINTER}/parameters/0",
        "collectionFormat 'tsv' of query parameter 'q' (tab-separated) has no OpenAPI 3 "
        "equivalent", True),
    "ssv-in-a-path": (
        _op({"name": "q", "in": "path", "required": True, **ARRAY,
             "collectionFormat": "ssv"}),
        f"{POINTER}/parameters/0",
        "collectionFormat 'ssv' of path parameter 'q' has no OpenAPI 3 equivalent for a path "
        "parameter", True),
    "multi-in-a-header": (
        _op({"name": "X-Q", "in": "header", **ARRAY, "collectionFormat": "multi"}),
        f"{POINTER}/parameters/0",
        "collectionFormat 'multi' of header parameter 'X-Q' has no OpenAPI 3 equivalent "
        "for a header parameter", True),
    "unknown-collection-format": (
        _op({"name": "q", "in": "query", **ARRAY, "collectionFormat": "json"}),
        f"{POINTER}/parameters/0",
        "collectionFormat 'json' of query parameter 'q' is not a Swagger 2.0 collection "
        "format", True),
    "array-of-arrays": (
        _op({"name": "q", "in": "query", "type": "array", "items": ARRAY}),
        f"{POINTER}/parameters/0",
        "query parameter 'q' is an array of arrays, which OpenAPI 3 parameter styles cannot "
        "serialize", True),
    "file-outside-a-form": (
        _op({"name": "f", "in": "query", "type": "file"}), f"{POINTER}/parameters/0",
        "query parameter 'f' has `type: file`, which Swagger 2.0 allows only in formData",
        False),
    "file-upload": (
        _op({"name": "f", "in": "formData", "type": "file"}), f"{POINTER}/parameters/0",
        "formData parameter 'f' is a file upload; facade sends form fields as text and "
        "cannot upload files", False),
    "two-bodies": (
        _op({"name": "a", "in": "body", "schema": PET}, {"name": "b", "in": "body"}),
        POINTER, "the operation has more than one body parameter; Swagger 2.0 allows one "
        "body, or form fields, not both", False),
    "body-and-form": (
        _op({"name": "a", "in": "body", "schema": PET},
            {"name": "b", "in": "formData", "type": "string"}),
        POINTER, "the operation has both a body parameter and formData parameters; Swagger "
        "2.0 allows one body, or form fields, not both", False),
    "unresolvable-parameter-ref": (
        _op({"$ref": "#/parameters/Nope"}), f"{POINTER}/parameters/0",
        "unresolvable $ref '#/parameters/Nope'", False),
}


@pytest.mark.parametrize(("snippet", "pointer", "message", "lossy"), ISSUES.values(),
                         ids=ISSUES.keys())
def test_what_cannot_be_converted_is_an_issue_of_its_operation(
        snippet: dict[str, Any], pointer: str, message: str, lossy: bool) -> None:
    conversion = _convert(snippet)
    (issue,) = conversion.issues["GET /a"]
    assert (issue.file, issue.pointer, issue.message, issue.lossy) == \
        ("spec.yaml", pointer, message, lossy)
    error = conversion.error("GET /a")
    assert error is not None and str(error).startswith(f"spec.yaml: {pointer}: {message}")
    assert conversion.error("GET /b") is None
    warnings = [w.format("curation.yaml") for w in conversion.warnings(set())]
    assert warnings == ([f"spec.yaml: warning: {pointer}: {message}; curating GET /a will "
                         "fail" + (f" ({issue.hint})" if issue.hint else "")]
                        if lossy else [])
    assert conversion.warnings({"GET /a"}) == []  # curated: an error, not a warning


def test_a_shared_lossy_parameter_is_one_warning_naming_every_operation() -> None:
    conversion = _convert({
        "parameters": {"Q": {"name": "q", "in": "query", **ARRAY, "collectionFormat": "tsv"}},
        "paths": {"/a": {"get": {"parameters": [{"$ref": "#/parameters/Q"}],
                                 "responses": {}},
                         "head": {"parameters": [{"$ref": "#/parameters/Q"}],
                                  "responses": {}}}}})
    (warning,) = conversion.warnings({"HEAD /a"} - {"HEAD /a"})
    assert warning.message.endswith("; curating GET /a or HEAD /a will fail")
    assert warning.path == ("#/parameters/Q",) and warning.file == "spec.yaml"


def test_issues_of_one_file_are_reported_together() -> None:
    conversion = _convert(_op({"name": "q", "in": "query", **ARRAY, "collectionFormat": "tsv"},
                              {"name": "f", "in": "query", "type": "file"}))
    error = conversion.error("GET /a")
    assert error is not None and len(error.problems) == 2


def test_other_swagger_versions_are_refused() -> None:
    with pytest.raises(SpecError, match=r"^spec\.yaml: #/swagger: Swagger 1\.2 documents are "
                       r"not supported; facade reads Swagger 2\.0, OpenAPI 3\.0 and 3\.1$"):
        convert(Path("/specs/spec.yaml"), {"swagger": "1.2"}, display="spec.yaml")


# -- the multi-file petstore ------------------------------------------------------------


def test_refs_into_other_files_keep_the_file_and_get_3_0_pointers() -> None:
    spec = load_spec(PETSTORE, "swagger.yaml")
    assert spec.version == "3.0" and spec.converted is not None
    paths = spec.data["paths"]
    find = paths["/pets"]["get"]
    assert find["parameters"][1] == {"$ref": "parameters.yaml#/Status"}
    assert find["parameters"][2] == {"$ref": "#/components/parameters/Limit"}
    assert find["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "defs.yaml#/components/schemas/Pet"}}
    assert find["responses"]["default"] == {"$ref": "responses/errors.yaml#/Unexpected"}
    assert paths["/pets"]["post"]["requestBody"] == {"required": True, "content": {
        "application/json": {"schema": {"$ref": "defs.yaml#/components/schemas/NewPet"}}}}
    assert paths["/owners/{ownerId}"] == {"$ref": "paths/owner.yaml"}
    files = {path.relative_to(DATA).as_posix(): data
             for path, data in spec.converted.files.items()}
    assert set(files) == {"defs.yaml", "parameters.yaml", "responses/errors.yaml",
                          "paths/owner.yaml"}
    # The file's `definitions` moved where the rewritten refs point, converted.
    assert list(files["defs.yaml"]) == ["components"]
    pet = files["defs.yaml"]["components"]["schemas"]["Pet"]
    assert pet["discriminator"] == {"propertyName": "kind"}
    assert pet["properties"]["owner"] == {"$ref": "#/components/schemas/Owner"}
    assert files["parameters.yaml"]["Status"] == {
        "name": "status", "in": "query", "description": "Status values to filter by.",
        "style": "form", "explode": True, "schema": {
            "type": "array", "items": {"type": "string",
                                       "enum": ["available", "pending", "sold"]}}}
    assert files["parameters.yaml"]["Source"]["example"] == "web"
    assert files["responses/errors.yaml"]["NotFound"]["content"]["application/json"] == {
        "schema": {"$ref": "../defs.yaml#/components/schemas/Error"}}
    owner = files["paths/owner.yaml"]["get"]
    assert owner["parameters"] == [{"$ref": "../parameters.yaml#/OwnerId"}]
    # The resolver reads the converted files, never the 2.0 ones again.
    assert set(spec.resolver.files) == {PETSTORE.resolve(), *spec.converted.files}


def test_a_response_in_another_file_used_with_other_produces_is_copied(
        tmp_path: Path) -> None:
    (tmp_path / "errors.yaml").write_text(
        "Bad:\n  description: bad\n  schema: {$ref: 'defs.yaml#/definitions/E'}\n")
    (tmp_path / "defs.yaml").write_text("definitions:\n  E: {type: object}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "item.yaml").write_text(
        "get:\n  produces: [text/plain]\n  responses:\n    400: {$ref: '../errors.yaml#/Bad'}\n")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({
        "swagger": "2.0", "info": INFO, "paths": {
            "/a": {"get": {"responses": {"400": {"$ref": "errors.yaml#/Bad"}}}},
            "/b": {"$ref": "sub/item.yaml"}}}))
    spec = load_spec(spec_file, "spec.yaml")
    assert spec.data["paths"]["/a"]["get"]["responses"]["400"] == {"$ref": "errors.yaml#/Bad"}
    converted = spec.converted.files if spec.converted else {}
    item = converted[(tmp_path / "sub" / "item.yaml").resolve()]
    # Copied into the path item's file, its own refs rebased onto that file.
    assert item["get"]["responses"]["400"] == {"description": "bad", "content": {
        "text/plain": {"schema": {"$ref": "../defs.yaml#/components/schemas/E"}}}}
    op = spec.operation(spec.by_label["GET /b"])
    assert op.response is None  # no 2xx: but the 400 resolves
    assert spec.resolver.resolve("../defs.yaml#/components/schemas/E",
                                 (tmp_path / "sub" / "item.yaml").resolve())[0] == {
        "type": "object"}


PETSTORE_CURATION = """\
version: 1
spec: {spec}
backend: {{base_url: "{url}"}}
tools:
  find_pets:
    operation: findPets
    response:
      include: [id, name, tag, owner.name]
  get_pet:
    operation: getPet
    params: {{petId: {{rename: pet_id}}}}
    response:
      redact: [owner.email]
  get_owner:
    operation: getOwner
"""


def _curation(tmp_path: Path, url: str = "http://127.0.0.1:9/v2", extra: str = "") -> Path:
    config = tmp_path / "curation.yaml"
    config.write_text(PETSTORE_CURATION.format(spec=PETSTORE, url=url) + extra)
    return config


def test_check_warns_about_an_uncurated_lossy_operation(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--config", str(_curation(tmp_path))])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("curation.yaml: ok, 3 tool(s)".replace(
        "curation.yaml", str(tmp_path / "curation.yaml")))
    assert f"{PETSTORE}: warning: #/paths/~1pets~1{{petId}}~1photos/get/parameters/1: " \
        "collectionFormat 'tsv' of query parameter 'sizes' (tab-separated) has no OpenAPI 3 " \
        "equivalent; curating GET /pets/{petId}/photos will fail (use csv, ssv, pipes or " \
        "multi in the spec, or do not curate this operation)" in result.stderr


def test_curating_a_lossy_operation_is_refused_precisely(tmp_path: Path) -> None:
    config = _curation(tmp_path, extra="  list_photos:\n    operation: listPhotos\n")
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 1
    assert f"{config}:17:16: tools.list_photos.operation: {PETSTORE}: " \
        "#/paths/~1pets~1{petId}~1photos/get/parameters/1 collectionFormat 'tsv' of query " \
        "parameter 'sizes' (tab-separated) has no OpenAPI 3 equivalent (use csv, ssv, " \
        "pipes or multi in the spec, or do not curate this operation)" in result.stderr
    assert "warning" not in result.stderr


def test_the_document_is_converted_once_per_load(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def counting(file: Path, data: dict[str, Any], *, display: str) -> Conversion:
        calls.append(file)
        return convert(file, data, display=display)

    monkeypatch.setattr(facade.loading.spec, "convert", counting)
    assert [t.name for t in load(_curation(tmp_path)).tools] == \
        ["find_pets", "get_pet", "get_owner"]
    assert calls == [PETSTORE.resolve()]


# -- the corpus -------------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS_2_0.values(), ids=CORPUS_2_0.keys())
def test_corpus_documents_convert_to_valid_openapi_3_0(path: Path) -> None:
    spec = load_spec(path)
    assert spec.converted is not None and spec.version == "3.0"
    errors = list(OpenAPIV30SpecValidator(spec.data, base_uri=path.as_uri()).iter_errors())
    assert not errors, errors[0]
    for data in spec.converted.files.values():  # only the separate petstore has any
        json.dumps(data, allow_nan=False)
    for ref in spec.by_label.values():  # every operation resolves, or has an issue
        if spec.converted.issues.get(ref.label):
            with pytest.raises(SpecError):
                spec.operation(ref)
        else:
            spec.operation(ref)


def test_the_corpus_upload_operation_is_the_only_issue() -> None:
    spec = load_spec(BIGGEST_2_0, "petstore.yaml")
    assert spec.converted is not None
    assert spec.converted.issues == {"POST /pet/{petId}/uploadImage": [Issue(
        "petstore.yaml", "#/paths/~1pet~1{petId}~1uploadImage/post/parameters/2",
        "formData parameter 'file' is a file upload; facade sends form fields as text and "
        "cannot upload files")]}


def _replicated(data: dict[str, Any], copies: int) -> dict[str, Any]:
    """`copies` renamed copies of a document's paths and definitions, in one document."""
    out = {**data, "paths": {}, "definitions": {}}
    text = json.dumps(data)
    for n in range(copies):
        copy = json.loads(text.replace("#/definitions/", f"#/definitions/N{n}_"))
        for path, item in copy["paths"].items():
            for op in item.values():
                op["operationId"] = f"{op['operationId']}_{n}"
            out["paths"][f"/v{n}{path}"] = item
        out["definitions"].update({f"N{n}_{k}": v for k, v in copy["definitions"].items()})
    return out


def test_a_large_document_converts_once_and_whole() -> None:
    """250 copies of the corpus's biggest 2.0 document (3.4 MB, 5,000 operations) convert
    in one pass; timing belongs to bench/, this checks the result."""
    data = read_document(BIGGEST_2_0)
    big_doc = _replicated(data, 250)
    document = convert(BIGGEST_2_0, big_doc, display="x").document
    assert len(document["paths"]) == len(big_doc["paths"])
    assert document["openapi"].startswith("3.0")


# -- end to end ---------------------------------------------------------------------------

OWNER = {"id": 3, "name": "Ada", "email": "ada@example.com"}
PETS = [{"id": 7, "name": "Rex", "kind": "dog", "tag": None, "owner": OWNER},
        {"id": 8, "name": "Tom", "kind": "cat", "tag": "indoor", "owner": OWNER}]


class _PetsBackend(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, str]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        _PetsBackend.seen.append((url.path, url.query, dict(self.headers)))
        body: Any = {"/v2/pets": PETS, "/v2/pets/7": PETS[0], "/v2/owners/3": OWNER}.get(
            url.path)
        data = json.dumps(body if body is not None else {"code": 404}).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def pets_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PetsBackend)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v2"
    server.shutdown()
    server.server_close()


async def test_swagger_2_tools_end_to_end(tmp_path: Path, pets_url: str) -> None:
    _PetsBackend.seen.clear()
    built = load(_curation(tmp_path, pets_url))
    async with Client(build_server(built)) as client:
        tools = {t.name: t for t in await client.list_tools()}
        find = tools["find_pets"].input_schema["properties"]
        assert find["tags"]["type"] == "array" and find["status"]["items"]["enum"] == [
            "available", "pending", "sold"]
        assert find["limit"]["default"] == 20 and find["limit"]["maximum"] == 100
        assert set(tools["get_pet"].input_schema["properties"]) == {"pet_id", "X-Source"}

        before = len(_PetsBackend.seen)
        result = await client.call_tool("find_pets", {
            "tags": ["a", "b"], "status": ["available", "sold"], "limit": 5})
        assert result.structured_content == {"result": [
            {"id": 7, "name": "Rex", "tag": None, "owner": {"name": "Ada"}},
            {"id": 8, "name": "Tom", "tag": "indoor", "owner": {"name": "Ada"}}]}
        assert len(_PetsBackend.seen) == before + 1
        path, query, _ = _PetsBackend.seen[-1]
        # csv → one comma-joined value; multi → the parameter repeated
        assert path == "/v2/pets"
        assert parse_qs(query) == {"tags": ["a,b"], "status": ["available", "sold"],
                                   "limit": ["5"]}

        before = len(_PetsBackend.seen)
        result = await client.call_tool("get_pet", {"pet_id": 7, "X-Source": "agent"})
        assert result.structured_content == {**PETS[0], "owner": {"id": 3, "name": "Ada"}}
        assert len(_PetsBackend.seen) == before + 1
        path, _, headers = _PetsBackend.seen[-1]
        assert path == "/v2/pets/7" and headers["X-Source"] == "agent"

        result = await client.call_tool("get_owner", {"ownerId": 3})
        assert result.structured_content == OWNER

        result = await client.call_tool("get_pet", {"pet_id": 99}, raise_on_error=False)
        assert result.is_error
