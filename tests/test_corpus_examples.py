"""Real specs' own examples against the published output schemas, and no data the curation
removes in `tools/list` (the shared corpus; skipped without it).

For every tool of the bench curations, each example the spec gives for the success
response (the media type's `example`/`examples`, the schema's `example`) goes through the
tool's result path and must be accepted by the listed output schema, as a validating MCP
client would. Real specs' examples often deviate from their own schemas: the test prints
how many, by kind (types, never values).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.validators import validator_for

import facade
from facade.call.tool import CuratedTool
from facade.cli import tool_listing
from facade.deviations import deviations
from facade.loading.spec import OpenAPIDocument, load_spec
from facade.tools import ToolDefinition

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "specs-corpus"
BENCH = ("github", "stripe", "twilio", "digitalocean")
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared specs corpus is "
                                f"not at {CORPUS} (../shared/specs-corpus)")


def _deref(spec: OpenAPIDocument, node: Any, base: Path) -> tuple[Any, Path]:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        node, base, _ = spec.resolver.resolve(node["$ref"], base)
    return node, base


def spec_examples(spec: OpenAPIDocument, operation: str) -> list[Any]:
    """The examples a spec gives for an operation's first 2xx JSON response."""
    ref = spec.find(operation)
    assert ref is not None and not isinstance(ref, list), operation
    item, base = _deref(spec, spec.data["paths"][ref.path], spec.file)
    raw, base = _deref(spec, item[ref.method.lower()], base)
    for status, response in sorted((raw.get("responses") or {}).items(), key=str):
        if not str(status).startswith("2"):
            continue
        response, where = _deref(spec, response, base)
        for media_type, media in ((response or {}).get("content") or {}).items():
            if "json" not in media_type:
                continue
            media, at = _deref(spec, media, where)
            found = [media["example"]] if "example" in media else []
            for example in (media.get("examples") or {}).values():
                example, _ = _deref(spec, example, at)
                if isinstance(example, dict) and "value" in example:
                    found.append(example["value"])
            schema, _ = _deref(spec, media.get("schema"), at)
            if isinstance(schema, dict) and "example" in schema:
                found.append(schema["example"])
            return found
    return []


def bench_tools(name: str) -> tuple[facade.Facade, OpenAPIDocument]:
    config = ROOT / "bench" / "curations" / f"{name}.yaml"
    built = facade.load(config, environ={})
    return built, load_spec(built.sources[0], built.spec_file)


def accepted(definition: ToolDefinition, example: Any) -> dict[str, Any]:
    result = CuratedTool.from_definition(definition, None)._structured(example)
    structured = result.structured_content
    assert structured is not None and definition.output_schema is not None
    validator_for(definition.output_schema).check_schema(definition.output_schema)
    jsonschema.Draft202012Validator(definition.output_schema).validate(structured)
    return structured


@pytest.mark.parametrize("name", BENCH)
def test_spec_examples_are_accepted_by_the_published_schema(name: str) -> None:
    built, spec = bench_tools(name)
    curation = {t.name: t for t in built.tools}
    operations = {tool: data["operation"] for tool, data in _curated(name).items()}
    seen, kinds = 0, Counter[str]()
    for tool, operation in operations.items():
        definition = curation[tool]
        for example in spec_examples(spec, operation):
            seen += 1
            structured = accepted(definition, example)
            body = structured["result"] if definition.wrap_result or \
                not isinstance(example, dict) else structured
            assert body == definition.shaper.apply(example, [])  # unchanged, just shaped
            assert definition.documented_schema is not None
            kinds.update(d.kind for d in deviations(definition.documented_schema, body))
    print(f"\n{name}: {seen} spec example(s) over {len(operations)} tools, all accepted; "
          f"deviations from their own documented schemas: {dict(kinds) or 'none'}")
    if name in ("github", "digitalocean"):
        assert seen >= 5  # these specs carry examples: the test is not vacuous


def _curated(name: str) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((ROOT / "bench" / "curations" / f"{name}.yaml").read_text())
    tools: dict[str, Any] = data["tools"]
    return tools


def test_objects_in_the_corpus_are_served_unwrapped() -> None:
    wrapped = {}
    for name in BENCH:
        built, _ = bench_tools(name)
        wrapped[name] = sorted(t.name for t in built.tools if t.wrap_result)
    # DigitalOcean's allOf results and GitHub's users are objects, not {"result": …}.
    assert wrapped["digitalocean"] == []
    assert "users_get_by_username" not in wrapped["github"]
    for name, tools in wrapped.items():  # what stays wrapped is a list
        built, _ = bench_tools(name)
        for tool in built.tools:
            if tool.name in tools:
                assert tool.documented_schema is not None
                assert tool.documented_schema.get("type") == "array", (name, tool.name)


def test_tools_list_carries_no_excluded_field_or_example_value(tmp_path: Path) -> None:
    spec = CORPUS / "digitalocean__openapi@62327d0" / "specification" / \
        "DigitalOcean-public.v2.yaml"
    config = tmp_path / "curation.yaml"
    config.write_text(json.dumps({
        "version": 1, "spec": str(spec), "backend": {"base_url": "http://127.0.0.1:9"},
        "redact": ["description"],
        "tools": {"sizes_list": {"operation": "sizes_list", "response": {
            "include": ["sizes[].slug", "sizes[].price_monthly"]}}}}))
    built = facade.load(config)
    (listed,) = tool_listing(built)
    # The schemas, where the spec's data would be (the operation's text is the spec's own).
    listing = json.dumps([listed["inputSchema"], listed["outputSchema"]])
    (tool,) = built.tools
    assert tool.output_schema is not None and "examples" in json.dumps(tool.output_schema)
    assert "s-1vcpu-1gb" in listing  # the kept field's example stays
    # The spec's example of the whole answer names every field, with values: none of the
    # excluded ones may reach tools/list. (Including the redacted `description` too would be
    # a load error: tests/test_conflicts.py.)
    for excluded in ("price_hourly", "0.00743999984115362", "regions", "blr1", "memory",
                     "1024", "vcpus", "transfer", "available", "links", "api.digitalocean",
                     "Basic", "General Purpose", "meta"):
        assert excluded not in listing, excluded
