"""Request encoding: OpenAPI style/explode rules, and path values that cannot escape."""

from __future__ import annotations

from typing import Any

import pytest

from facade.call.encoding import ArgumentError, encode_request
from facade.tools import Argument, HTTPBinding


def _binding(*args: Argument, path: str = "/items/{id}", media: str | None = None
             ) -> HTTPBinding:
    return HTTPBinding("GET", path, args, body_media_type=media)


PATH_ID = Argument(name="id", source="id", location="path", style="simple", explode=False)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("SKU-1", "/items/SKU-1"),
        ("a=b&c", "/items/a%3Db%26c"),
        ("100%", "/items/100%25"),
        ("a b", "/items/a%20b"),
        ("caf\u00e9", "/items/caf%C3%A9"),
        ("v1.2", "/items/v1.2"),
        (42, "/items/42"),
        (True, "/items/true"),
        (["a", "b"], "/items/a,b"),
    ],
    ids=["plain", "ampersand", "percent", "space", "unicode", "inner-dot", "int", "bool",
         "array"],
)
def test_path_values_are_percent_encoded(value: Any, path: str) -> None:
    assert encode_request(_binding(PATH_ID), {"id": value}).path == path


@pytest.mark.parametrize(
    ("value", "allow", "path"),
    [
        ("group/project", {"/"}, "/items/group%2Fproject"),
        ("a;b", {";"}, "/items/a%3Bb"),
        ("a%2Fb", {"/"}, "/items/a%252Fb"),
    ],
    ids=["slash", "semicolon", "encoded-slash"],
)
def test_the_curation_can_allow_a_character(value: str, allow: set[str], path: str) -> None:
    arg = Argument(name="id", source="id", location="path", style="simple", explode=False,
                   allow=frozenset(allow))
    assert encode_request(_binding(arg), {"id": value}).path == path


@pytest.mark.parametrize("value", ["a/../b", "../x", "a/./b", "a\\..\\b"],
                         ids=["inner", "leading", "dot", "backslash"])
def test_allowing_slash_never_allows_dot_segments(value: str) -> None:
    arg = Argument(name="id", source="id", location="path", style="simple", explode=False,
                   allow=frozenset("/\\"))
    with pytest.raises(ArgumentError, match=r"^argument 'id': .* contains the dot segment "
                       r"'\.\.?', which could change the endpoint called$"):
        encode_request(_binding(arg), {"id": value})


@pytest.mark.parametrize(
    ("style", "explode", "value", "query"),
    [
        ("form", True, ["a", "b"], [("tag", "a"), ("tag", "b")]),
        ("form", False, ["a", "b"], [("tag", "a,b")]),
        ("spaceDelimited", False, ["a", "b"], [("tag", "a b")]),
        ("pipeDelimited", False, ["a", "b"], [("tag", "a|b")]),
        ("form", True, {"x": 1, "y": True}, [("x", "1"), ("y", "true")]),
        ("form", False, {"x": 1}, [("tag", "x,1")]),
        ("deepObject", True, {"a": {"b": 1}, "c": [2]}, [("tag[a][b]", "1"), ("tag[c][0]", "2")]),
        ("form", True, False, [("tag", "false")]),
    ],
    ids=["form-explode", "form", "space", "pipe", "object-explode", "object", "deep", "bool"],
)
def test_query_styles(style: str, explode: bool, value: Any, query: list[tuple[str, str]]
                      ) -> None:
    arg = Argument(name="tag", source="tag", location="query", style=style, explode=explode)
    assert encode_request(_binding(arg, path="/items"), {"tag": value}).query == query


def test_fixed_values_win_and_defaults_fill_in() -> None:
    fixed = Argument(name="X-Tenant", source="X-Tenant", location="header", style="simple",
                     fixed=True, value="acme", has_value=True)
    limit = Argument(name="limit", source="limit", location="query", value=20, has_value=True)
    req = encode_request(_binding(fixed, limit, path="/items"), {"X-Tenant": "evil"})
    assert req.headers == {"X-Tenant": "acme"}
    assert req.query == [("limit", "20")]


def test_header_values_cannot_inject_lines() -> None:
    arg = Argument(name="trace", source="X-Trace", location="header", style="simple")
    with pytest.raises(ArgumentError, match="control characters"):
        encode_request(_binding(arg, path="/items"), {"trace": "a\r\nX-Admin: 1"})


def test_body_properties_and_lifted_nested_property_merge() -> None:
    name = Argument(name="name", source="name", location="body", body_path=("name",))
    email = Argument(name="supplier_email", source="supplier.contact.email", location="body",
                     body_path=("supplier", "contact", "email"))
    req = encode_request(_binding(name, email, path="/items", media="application/json"),
                         {"name": "drill", "supplier_email": "a@b.c"})
    assert req.json_body == {"name": "drill", "supplier": {"contact": {"email": "a@b.c"}}}


def test_form_body_and_cookie() -> None:
    name = Argument(name="name", source="name", location="body", body_path=("name",))
    session = Argument(name="sid", source="sid", location="cookie")
    req = encode_request(
        _binding(name, session, path="/items", media="application/x-www-form-urlencoded"),
        {"name": "a b", "sid": "x;y"})
    assert req.form_body == {"name": "a b"}
    assert req.headers["Cookie"] == "sid=x%3By"
