"""The pure-Python pre-check of a curated operation's structure, and its authority.

`facade.loading.spec.OpenAPIDocument._validate` builds a small `shape` of each curated operation
and asks `facade.loading.spec.plainly_valid_operation` whether openapi-pydantic would certainly
accept it; only when the answer is no are openapi-pydantic's models imported (~60 ms of a
cold start) to validate it and word the error. So the pre-check may say no to a valid
shape, but must never say yes to one openapi-pydantic refuses (in 3.0 or 3.1): that
property is tested here, along with the pre-check saying yes to real-world operations,
cold starts not importing openapi-pydantic, and error messages staying as they were.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_pydantic.v3 import v3_0, v3_1
from pydantic import ValidationError

import facade.loading.spec
from facade import LoadError, load
from facade.loading.precheck import plainly_valid_operation
from facade.loading.spec import load_spec

from conftest import SPECS_CORPUS, VENDORED_SPECS

ROOT = Path(__file__).resolve().parent.parent
GITHUB = SPECS_CORPUS / "WillAbides__octo-go@fa158bd" / "api.github.com.json"
STRIPE = SPECS_CORPUS / "stripe__openapi@e0123a3" / "openapi" / "spec3.json"
README_API = VENDORED_SPECS / "readmeio__oas-examples@060d4ff" / "3.0" / "yaml" / "readme.yaml"

LOCATIONS = ["query", "header", "path", "cookie"]
STYLES = ["matrix", "label", "form", "simple", "spaceDelimited", "pipeDelimited",
          "deepObject"]


class Text(str):
    """A str subclass: pydantic takes it, the pre-check need not."""


def refused(shape: dict[str, Any]) -> dict[str, str]:
    """What openapi-pydantic's 3.0 and 3.1 Operation models say of `shape` (ok: {})."""
    errors = {}
    for name, models in (("3.0", v3_0), ("3.1", v3_1)):
        try:
            models.Operation.model_validate(shape)
        except ValidationError as exc:
            errors[name] = str(exc)
    return errors


# Any text, and text around the surrogate range (JSON documents can hold lone ones).
texts = st.one_of(st.text(max_size=8), st.text(
    st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), min_size=1, max_size=4))
junk = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(),
                 st.lists(st.integers(), max_size=2), st.builds(Text, texts),
                 st.just({}), st.binary(max_size=3))
strings = st.one_of(texts, junk)
names = st.one_of(texts, junk)
locations = st.one_of(st.sampled_from(LOCATIONS),
                      st.sampled_from(["body", "formData", "PATH", "Query", " query", ""]),
                      st.builds(Text, st.sampled_from(LOCATIONS)), junk)
requireds = st.one_of(st.booleans(), st.sampled_from(["true", "false", "yes", "1", ""]),
                      st.integers(-1, 2), st.none(), junk)
styles = st.one_of(st.sampled_from(STYLES), texts, junk)
explodes = st.one_of(st.booleans(), st.none(), st.integers(-1, 2),
                     st.sampled_from(["true", "no"]), junk)
# Mostly wrong for any field facade sets (pydantic's lax mode takes 0 and 1 for a bool).
wrong: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.lists(texts, max_size=2), st.just({}),
    st.just({"a": 1}))
schemas: st.SearchStrategy[Any] = st.one_of(
    st.just({}), st.sampled_from([{"type": "string"}, {"$ref": "#/x"}]),
    st.sampled_from([{"required": []}, {"type": "text"}, {"enum": []}, {"properties": 1},
                     {"$ref": 1}, {"nullable": "maybe"}]), junk)
parameters = st.fixed_dictionaries(
    {"name": names, "in": locations},
    optional={"required": requireds, "schema": schemas, "style": styles,
              "explode": explodes, "$ref": texts, "content": junk, "allowEmptyValue": junk})
deprecateds = st.one_of(st.booleans(), st.none(), st.sampled_from(["true", "yes", "0"]),
                        st.integers(-1, 2), junk)
tags = st.one_of(st.none(), st.lists(texts, max_size=3),
                 st.lists(st.one_of(texts, junk), max_size=3), st.tuples(texts), texts,
                 junk)
media_types = st.one_of(st.sampled_from(["application/json", "text/plain", "*/*"]), texts)
media_objects = st.one_of(st.just({}), st.sampled_from([
    {"schema": {}}, {"example": 1}, {"schema": 1}, {"encoding": 1}, {"examples": []},
    {"schema": {"required": []}}]), junk)
request_bodies = st.one_of(
    st.fixed_dictionaries({"content": st.dictionaries(media_types, st.just({}),
                                                      max_size=2)}),
    st.fixed_dictionaries({"content": st.one_of(
        junk, st.dictionaries(st.one_of(media_types, st.integers()), media_objects,
                              max_size=2))}),
    st.fixed_dictionaries({"content": st.just({"application/json": {}})},
                          optional={"required": requireds, "$ref": texts}),
    junk)
responses = st.one_of(st.just({"200": {"description": "-"}}), st.just({}),
                      st.just({"200": {}}), st.just({200: {"description": "-"}}),
                      st.just({"200": {"description": 1}}), junk)
shapes = st.fixed_dictionaries(
    {"parameters": st.one_of(st.lists(parameters, max_size=3), junk),
     "responses": responses},
    optional={"requestBody": request_bodies, "operationId": strings, "summary": strings,
              "description": strings, "deprecated": deprecateds, "tags": tags,
              "callbacks": junk})

# Only what facade builds from a document openapi-pydantic accepts: the pre-check must
# vouch for every one of these, or it saves nothing.
valid_parameters = st.fixed_dictionaries(
    {"name": texts, "in": st.sampled_from(LOCATIONS), "required": st.booleans(),
     "schema": st.just({}), "style": st.one_of(st.sampled_from(STYLES), texts),
     "explode": st.booleans()})
valid_shapes: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"parameters": st.lists(valid_parameters, max_size=4),
     "responses": st.just({"200": {"description": "-"}})},
    optional={
        "requestBody": st.fixed_dictionaries({"content": st.dictionaries(
            media_types, st.just({}), min_size=1, max_size=1)}),
        "operationId": st.one_of(texts, st.none()), "summary": st.one_of(texts, st.none()),
        "description": st.one_of(texts, st.none()), "deprecated": st.booleans(),
        "tags": st.one_of(st.none(), st.lists(texts, max_size=3))})


PARAMETER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": names, "in": locations, "required": requireds, "schema": schemas,
    "style": styles, "explode": explodes, "$ref": texts, "content": junk,
    "allowEmptyValue": junk}
OPERATION_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "parameters": junk, "responses": responses, "requestBody": request_bodies,
    "operationId": strings, "summary": strings, "description": strings,
    "deprecated": deprecateds, "tags": tags, "callbacks": junk, "x-extra": junk}


@st.composite
def near_valid_shapes(draw: st.DrawFn) -> dict[str, Any]:
    """A sound shape with (mostly) one field replaced by anything, added or removed."""
    shape: dict[str, Any] = draw(valid_shapes)
    # Kept even once `shape` no longer holds them: a change to them is then harmless.
    params: list[dict[str, Any]] = shape["parameters"]
    if not params:
        params.append(draw(valid_parameters))
    content: dict[Any, Any] = shape.get("requestBody", {}).get("content", {})
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        where = draw(st.sampled_from(["operation", "parameter", "media"]))
        if where == "media" and content:
            key = draw(st.one_of(st.sampled_from(list(content)), media_types,
                                 st.integers()))
            content[key] = draw(media_objects)
            continue
        if where == "parameter" and params:
            target, fields = draw(st.sampled_from(params)), PARAMETER_FIELDS
        else:
            target, fields = shape, OPERATION_FIELDS
        key = draw(st.sampled_from(sorted(fields)))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(st.one_of(fields[key], wrong))
    return shape


# 2,000 examples take 45 s of CPU on a shared 2-core machine: the suite's 60 s timeout is
# there to catch hangs, not to time this test, which failed with it under load.
@pytest.mark.timeout(600)
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(shapes, near_valid_shapes(), near_valid_shapes(), valid_shapes))
def test_a_vouched_for_shape_is_accepted_by_openapi_pydantic(shape: dict[str, Any]) -> None:
    if plainly_valid_operation(shape):
        assert refused(shape) == {}


EDGE_VALUES: list[Any] = [
    None, "", "x", "true", "query", "PATH", "form", Text("query"), b"x", 0, 1, 2, 1.5,
    True, False, [], ["x"], [1], ("x",), {}, {"a": 1}, {"type": "string"}, {"$ref": "#/x"},
    {"required": []}, {"type": "text"}, {"schema": 1}, {"schema": {}}, {"description": "-"},
    {"content": {}}, {"content": {"application/json": {}}}, {"200": {"description": "-"}},
    [{"name": "a", "in": "query"}]]


def single_changes() -> list[tuple[str, dict[str, Any]]]:
    """A sound shape with one field (of the operation, a parameter, the body, a media
    type or a response) set to each edge value, or removed."""
    def base() -> dict[str, Any]:
        return {"parameters": [{"name": "id", "in": "path", "required": True, "schema": {},
                                "style": "simple", "explode": False}],
                "responses": {"200": {"description": "-"}},
                "requestBody": {"content": {"application/json": {}}},
                "operationId": "op", "summary": "s", "description": "d",
                "deprecated": False, "tags": ["t"]}
    targets: dict[str, Callable[[dict[str, Any]], dict[Any, Any]]] = {
        "operation": lambda shape: shape,
        "parameter": lambda shape: shape["parameters"][0],
        "body": lambda shape: shape["requestBody"],
        "content": lambda shape: shape["requestBody"]["content"],
        "media": lambda shape: shape["requestBody"]["content"]["application/json"],
        "responses": lambda shape: shape["responses"],
        "response": lambda shape: shape["responses"]["200"],
    }
    keys = [*OPERATION_FIELDS, *PARAMETER_FIELDS, "content", "application/json", "200",
            "schema", "encoding", 200]
    changes = []
    for where, target in targets.items():
        for key in keys:
            shape = base()
            target(shape).pop(key, None)
            changes.append((f"{where}: no {key!r}", shape))
            for value in EDGE_VALUES:
                shape = base()
                target(shape)[key] = value
                changes.append((f"{where}: {key!r} = {value!r}", shape))
    for value in EDGE_VALUES:
        shape = base()
        shape["tags"] = ["t", value]
        changes.append((f"tag {value!r}", shape))
    return changes


def test_every_single_change_of_a_sound_shape_is_judged_safely() -> None:
    """Deterministic, so that a missing check cannot hide behind an unlucky draw."""
    vouched = 0
    for label, shape in single_changes():
        if plainly_valid_operation(shape):
            vouched += 1
            assert refused(shape) == {}, label
    assert vouched > 20


@settings(max_examples=300, deadline=None)
@given(valid_shapes)
def test_what_facade_builds_from_a_sound_operation_is_vouched_for(
        shape: dict[str, Any]) -> None:
    assert refused(shape) == {}
    assert plainly_valid_operation(shape)


@pytest.mark.parametrize("shape", [
    {"responses": {"200": {"description": "-"}}, "deprecated": "true"},  # pydantic: True
    {"responses": {"200": {"description": "-"}}, "tags": ("a",)},  # pydantic: a list
    {"responses": {"200": {"description": "-"}}, "summary": Text("s")},
    {"responses": {"200": {"description": "-"}},
     "parameters": [{"name": "a", "in": "query", "required": 1}]},
], ids=["str-bool", "tuple-tags", "str-subclass", "int-required"])
def test_lax_coercions_are_left_to_openapi_pydantic(shape: dict[str, Any]) -> None:
    """Accepted by pydantic's lax mode, but not vouched for: the safe side."""
    assert refused(shape) == {}
    assert not plainly_valid_operation(shape)


@pytest.mark.parametrize(("spec", "operations"), [
    pytest.param(GITHUB, 623, marks=pytest.mark.corpus, id="github"),
    pytest.param(STRIPE, 417, marks=pytest.mark.corpus, id="stripe"),
    pytest.param(README_API, 36, id="readme"),
])
def test_every_real_world_operation_is_vouched_for(
        spec: Path, operations: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every operation of the GitHub, Stripe and ReadMe documents, through `OpenAPIDocument`."""
    verdicts: list[bool] = []

    def recording(shape: dict[str, Any]) -> bool:
        verdicts.append(plainly_valid_operation(shape))
        return verdicts[-1]

    monkeypatch.setattr(facade.loading.spec, "plainly_valid_operation", recording)
    doc = load_spec(spec)
    refs = list(doc.by_label.values())
    assert len(refs) == operations
    for ref in refs:
        doc.operation(ref)
    assert len(verdicts) == len(refs)
    assert all(verdicts), f"{verdicts.count(False)} of {len(refs)} not vouched for"


def test_a_valid_start_does_not_import_openapi_pydantic() -> None:
    code = textwrap.dedent("""\
        import sys
        import facade.loading.loader
        api = facade.loading.loader.load("curation.yaml", environ={
            "INVENTORY_URL": "http://127.0.0.1:9/v1", "INVENTORY_TOKEN": "t"})
        print(len(api.tools), "openapi_pydantic" in sys.modules,
              any(m.startswith("openapi_pydantic") for m in sys.modules))
        """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout.split()
    assert int(out[0]) > 0  # operations were resolved (and so validated)
    assert out[1:] == ["False", "False"]


SPEC = """\
openapi: {version}
info: {{title: t, version: '1'}}
paths:
  /a/{{id}}:
    get:
      operationId: getA
      summary: 7
      responses: {{'200': {{description: ok}}}}
    put:
      operationId: putA
      parameters:
        - {{name: id, in: body, required: true, schema: {{type: string}}}}
      responses: {{'200': {{description: ok}}}}
    post:
      operationId: postA
      deprecated: null
      responses: {{'200': {{description: ok}}}}
    delete:
      operationId: deleteA
      tags: [ok, 1]
      responses: {{'200': {{description: ok}}}}
    patch:
      operationId: patchA
      deprecated: "yes"
      parameters:
        - {{name: id, in: path, required: "true", style: weird, explode: 1}}
      responses: {{'200': {{description: ok}}}}
"""


def _load_errors(curation: Path) -> list[str]:
    here = os.getcwd()
    os.chdir(curation.parent)
    try:
        with pytest.raises(LoadError) as info:
            load(curation.name, environ={})
    finally:
        os.chdir(here)
    return str(info.value).splitlines()


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
def test_invalid_operations_keep_openapi_pydantics_messages(
        version: str, write_curation: Callable[[str], Path], tmp_path: Path) -> None:
    """The messages, pinned from before the pre-check, still come from openapi-pydantic."""
    (tmp_path / "api.yaml").write_text(SPEC.format(version=version))
    path = write_curation("""\
        version: 1
        spec: api.yaml
        read_only: false
        backend: {base_url: "http://127.0.0.1:9"}
        tools:
          a: {operation: getA}
          b: {operation: putA}
          c: {operation: postA}
          d: {operation: deleteA}
          e: {operation: patchA}
        """)
    where = "api.yaml: #/paths/~1a~1{id}"
    assert _load_errors(path) == [
        (f"curation.yaml:6:18: tools.a.operation: {where}/get invalid operation: "
         "summary: Input should be a valid string"),
        (f"curation.yaml:7:18: tools.b.operation: {where}/put invalid operation: "
         "parameters/0: Input should be 'query', 'header', 'path' or 'cookie'"),
        (f"curation.yaml:8:18: tools.c.operation: {where}/post invalid operation: "
         "deprecated: Input should be a valid boolean"),
        (f"curation.yaml:9:18: tools.d.operation: {where}/delete invalid operation: "
         "tags/1: Input should be a valid string"),
    ]  # patchA: not vouched for, but openapi-pydantic (lax) accepts it


def test_a_shape_the_pre_check_refuses_but_openapi_pydantic_accepts_loads(
        write_curation: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "api.yaml").write_text(SPEC.format(version="3.0.3"))
    path = write_curation("""\
        version: 1
        spec: api.yaml
        read_only: false
        backend: {base_url: "http://127.0.0.1:9"}
        tools:
          e: {operation: patchA}
        """)
    assert [t.name for t in load(path, environ={}).tools] == ["e"]
