"""The deviation classifier as `facade test` uses it: a recorded answer against the spec's
own schema, each deviation with its kind, include path, documented and actual type, and the
schema to fix (its site). The call-time use is tested in tests/test_result_deviations.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from facade.deviations import KINDS, Deviation, Site, deviations, json_type

FILE = Path("/specs/spec.yaml")
DOC: dict[str, Any] = {"components": {"schemas": {
    "User": {"type": "object", "required": ["id", "name"], "properties": {
        "id": {"type": "integer", "format": "int32"},
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "role": {"type": "string", "enum": ["admin", "member"]},
        "seen": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "boss": {"$ref": "#/components/schemas/User"},
        "meta": {"type": "object", "additionalProperties": {"type": "integer"}}}},
    "Admin": {"allOf": [{"$ref": "#/components/schemas/User"},
                        {"type": "object", "properties": {"level": {"type": "integer"}}}]},
    "Either": {"oneOf": [{"type": "string"}, {"type": "object",
                                              "properties": {"id": {"type": "integer"}}}]},
    "Maybe": {"type": ["string", "null"]},
}}}
USER: Site = (FILE, "/components/schemas/User")
GOOD = {"id": 1, "name": "Ada", "email": "ada@example.com", "role": "admin",
        "seen": "2024-05-01T10:00:00Z", "tags": ["a"], "meta": {"x": 1}}


def resolve(ref: str, site: Site) -> tuple[Any, Site]:
    pointer = ref.partition("#")[2]
    node: Any = DOC
    for token in pointer.split("/")[1:]:
        node = node[token]
    return node, (FILE, pointer)


def classify(answer: Any, schema: Any, *, version: str, site: Site,
             masked: str | None = None) -> list[Deviation]:
    return deviations(schema, answer, None, resolve=resolve, site=site,
                      nullable_keyword=version != "3.1", undocumented=True, masked=masked)


def check(answer: Any, name: str = "User", version: str = "3.0") -> list[Deviation]:
    return classify(answer, {"$ref": f"#/components/schemas/{name}"}, version=version,
                    site=(FILE, "/paths/~1users/get/responses/200"))


def at(name: str) -> Site:
    return FILE, f"/components/schemas/User/properties/{name}"


def test_a_conforming_answer_has_no_deviation() -> None:
    assert check(GOOD) == []
    assert check({**GOOD, "boss": GOOD, "level": 2}, "Admin") == []
    assert check("text", "Either") == [] and check({"id": 3}, "Either") == []
    assert check(None, "Maybe", "3.1") == []


@pytest.mark.parametrize(("answer", "expected"), [
    ({**GOOD, "name": None}, Deviation("name", "null", "string", "null", at("name"))),
    ({**GOOD, "id": "1"}, Deviation("id", "type", "integer", "string", at("id"))),
    ({**GOOD, "role": "owner"}, Deviation("role", "enum", "one of the 2 listed values",
                                          "string", at("role"), value="owner")),
    ({**GOOD, "seen": "yesterday"},
     Deviation("seen", "format", "a valid date-time", "string", at("seen"))),
    ({**GOOD, "id": 2**40}, Deviation("id", "format", "a valid int32", "integer", at("id"))),
    ({k: v for k, v in GOOD.items() if k != "name"},
     Deviation("name", "missing_required", "string", "absent", USER, name="name")),
    ({**GOOD, "nick-name": "A"},
     Deviation("nick-name", "extra_property", "absent", "string", USER, name="nick-name")),
    ({**GOOD, "tags": ["a", 2, 3]},
     Deviation("tags[]", "type", "string", "integer", (FILE, USER[1] + "/properties/tags/items"))),
    ({**GOOD, "meta": {"x": "1"}}, Deviation("meta.*", "type", "integer", "string",
        (FILE, USER[1] + "/properties/meta/additionalProperties"))),
], ids=["null", "type", "enum", "format", "int32", "missing_required", "extra_property",
        "array items, once", "additionalProperties"])
def test_each_kind_is_classified_with_the_site_that_documents_it(
        answer: dict[str, Any], expected: Deviation) -> None:
    assert check(answer) == [expected]
    assert expected.kind in KINDS


def test_a_field_from_a_ref_points_at_the_component_schema() -> None:
    # boss is a User: its name's fix belongs to User, shared by every use of it.
    assert check({**GOOD, "boss": {**GOOD, "name": None}}) == [
        Deviation("boss.name", "null", "string", "null", at("name"))]


def test_all_of_parts_share_their_properties_and_one_of_takes_the_closest_branch() -> None:
    assert check({**GOOD, "level": "high"}, "Admin") == [Deviation(
        "level", "type", "integer", "string",
        (FILE, "/components/schemas/Admin/allOf/1/properties/level"))]
    assert check({"id": "x"}, "Either") == [Deviation(
        "id", "type", "integer", "string",
        (FILE, "/components/schemas/Either/oneOf/1/properties/id"))]


def test_nullable_in_3_0_and_type_lists_in_3_1() -> None:
    nullable = {"type": "string", "nullable": True}
    site = (FILE, "")
    assert classify(None, nullable, version="3.0", site=site) == []
    assert classify(None, nullable, version="3.1", site=site) == [
        Deviation("", "null", "string", "null", site)]
    assert check(None, "Maybe", "3.0") == []  # a type list says null there too


def test_a_masked_value_is_not_compared_and_values_are_never_shown() -> None:
    found = classify({**GOOD, "id": "***", "role": "s3cr3t-role"}, DOC["components"]["schemas"]
                     ["User"], version="3.0", site=USER, masked="***")
    assert [d.kind for d in found] == ["enum"]
    assert "s3cr3t" not in f"{found[0].path} {found[0].documented} {found[0].actual}"
    assert "s3cr3t" not in repr(found[0])


@pytest.mark.parametrize(("value", "kind"), [
    (None, "null"), (True, "boolean"), (3, "integer"), (3.0, "number"), (3.5, "number"),
    ("3", "string"), ([], "array"), ({}, "object")],
    ids=["null", "boolean", "integer", "integral float", "number", "string", "array", "object"])
def test_json_type(value: Any, kind: str) -> None:
    assert json_type(value) == kind
