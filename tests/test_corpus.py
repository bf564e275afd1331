"""Every entry document of the shared real-world corpus builds tools or is refused precisely.

The corpus (`../shared/specs-corpus`, see its MANIFEST.md; not in the repository, so this
module is marked `corpus`, see tests/conftest.py) holds OpenAPI documents nobody
on this project wrote: Stripe, GitHub, Twilio, DigitalOcean's multi-file spec, Swagger 2.0
examples (converted to OpenAPI 3.0 as they load), webhook-only documents and the OAS
schema's known-invalid test fixtures. The entries are read from the MANIFEST table, so a
document added there is tested here too.

For each entry the expected outcome is explicit: an entry not listed in `EXPECTED` must
build tools, and the others must be refused with the message given for their category.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import facade
from facade.cli import tool_listing
from facade.errors import CurationError, LoadError
from facade.loading.spec import OpenAPIDocument, OperationRef, load_spec
from facade.tools import Facade, tool_name_for

from conftest import SPECS_CORPUS as CORPUS

pytestmark = pytest.mark.corpus
MANIFEST = CORPUS / "MANIFEST.md"
MAX_TOOLS = 5


@dataclass(frozen=True)
class Entry:
    """One row of the MANIFEST table."""

    path: str  # relative to CORPUS
    version: str
    operations: int
    notes: str

    @property
    def spec(self) -> Path:
        return CORPUS / self.path


def read_manifest() -> list[Entry]:
    """The rows of the MANIFEST's `| entry document | … |` table; none without a corpus."""
    if not MANIFEST.is_file():
        return []  # no corpus: every test here is skipped (or fails, if it is required)
    entries = []
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not re.fullmatch(r"`[^`]+`", cells[0]):
            continue  # prose, the header row or the |---| row
        path, _licence, version, _format, _bytes, operations, notes = cells
        entries.append(Entry(path.strip("`"), version, int(operations.replace(",", "")),
                             notes))
    return entries


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One `test_corpus_entry` per MANIFEST row, read as the tests are collected (never at
    import); without a corpus, one placeholder that the `corpus` marker skips."""
    if "entry" in metafunc.fixturenames:
        entries = read_manifest() or [Entry("<the specs corpus is missing>", "", 0, "")]
        metafunc.parametrize("entry", entries, ids=[e.path for e in entries])


class Outcome(Enum):
    TOOLS = "builds tools for up to 5 GET operations"
    SWAGGER_2 = "Swagger 2.0: converted to OpenAPI 3.0 in memory, builds the tools listed " \
        "in SWAGGER_2_TOOLS"
    NO_OPERATIONS = "no operations at all: any curated operation is unknown"
    NO_GET = "operations, but no GET: a read-only façade has nothing to serve"


# Anything not listed here must build tools.
EXPECTED: dict[str, Outcome] = {
    # Swagger 2.0, single and multi-file: converted as they load, then like any other.
    "readmeio__oas-examples@060d4ff/2.0/yaml/petstore.yaml": Outcome.SWAGGER_2,
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/yaml/uber.yaml": Outcome.SWAGGER_2,
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/json/petstore-expanded.json":
        Outcome.SWAGGER_2,
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/json/petstore-separate/spec/swagger.json":
        Outcome.SWAGGER_2,
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/yaml/petstore-with-external-docs.yaml":
        Outcome.SWAGGER_2,
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/json/petstore.json": Outcome.SWAGGER_2,
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/yaml/petstore-minimal.yaml":
        Outcome.SWAGGER_2,
    # KNOWN-INVALID OAS 3.1 fixtures. What is wrong with them (an empty server enum,
    # non-schema values under components.schemas, no paths/components/webhooks) is in
    # parts facade never reads (servers, unreferenced schemas); what a curator runs into
    # is that they define no operations, and that is what they must be told.
    "OAI__OpenAPI-Specification@fad4c13/tests/v3.1/fail/server_enum_empty.yaml":
        Outcome.NO_OPERATIONS,
    "OAI__OpenAPI-Specification@fad4c13/tests/v3.1/fail/invalid_schema_types.yaml":
        Outcome.NO_OPERATIONS,
    "OAI__OpenAPI-Specification@fad4c13/tests/v3.1/fail/no_containers.yaml":
        Outcome.NO_OPERATIONS,
    # Valid, but webhooks only: nothing under `paths`.
    "readmeio__oas-examples@060d4ff/3.1/json/webhooks.json": Outcome.NO_OPERATIONS,
    "OAI__OpenAPI-Specification@fad4c13/examples/v3.1/webhook-example.yaml":
        Outcome.NO_OPERATIONS,
    "OAI__OpenAPI-Specification@fad4c13/tests/v3.1/pass/minimal_hooks.yaml":
        Outcome.NO_OPERATIONS,
    # Only POST/PUT/PATCH operations (request-body showcases, callbacks, circular bodies).
    "readmeio__oas-examples@060d4ff/3.0/json/schema-types.json": Outcome.NO_GET,
    "readmeio__oas-examples@060d4ff/3.1/yaml/schema-types.yaml": Outcome.NO_GET,
    "readmeio__oas-examples@060d4ff/3.0/json/discriminators.json": Outcome.NO_GET,
    "readmeio__oas-examples@060d4ff/3.0/json/schema-circular.json": Outcome.NO_GET,
    "readmeio__oas-examples@060d4ff/3.0/json/complex-nesting.json": Outcome.NO_GET,
    "readmeio__oas-examples@060d4ff/3.0/yaml/server-variables.yaml": Outcome.NO_GET,
    "readmeio__oas-examples@060d4ff/3.0/yaml/callbacks.yaml": Outcome.NO_GET,
    "OAI__OpenAPI-Specification@fad4c13/examples/v3.0/callback-example.json": Outcome.NO_GET,
    "readmeio__oas-examples@060d4ff/3.0/yaml/form-data.yaml": Outcome.NO_GET,
}

# What each Swagger 2.0 entry builds: up to 5 GET operations, tool name → operation.
SWAGGER_2_TOOLS: dict[str, dict[str, str]] = {
    "readmeio__oas-examples@060d4ff/2.0/yaml/petstore.yaml": {
        "find_pets_by_status": "findPetsByStatus", "find_pets_by_tags": "findPetsByTags",
        "get_pet_by_id": "getPetById", "get_inventory": "getInventory",
        "get_order_by_id": "getOrderById"},
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/yaml/uber.yaml": {
        "get_products": "GET /products", "get_estimates_price": "GET /estimates/price",
        "get_estimates_time": "GET /estimates/time", "get_me": "GET /me",
        "get_history": "GET /history"},
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/json/petstore-expanded.json": {
        "find_pets": "findPets", "find_pet_by_id": "find pet by id"},
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/json/petstore-separate/spec/swagger.json": {
        "find_pets": "findPets", "find_pet_by_id": "find pet by id"},
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/yaml/petstore-with-external-docs.yaml": {
        "find_pets": "findPets", "find_pet_by_id": "findPetById"},
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/json/petstore.json": {
        "list_pets": "listPets", "show_pet_by_id": "showPetById"},
    "OAI__OpenAPI-Specification@fad4c13/examples/v2.0/yaml/petstore-minimal.yaml": {
        "get_pets": "GET /pets"},
}

UNKNOWN_OPERATION = "noSuchOperationAnywhere"


# -- helpers ---------------------------------------------------------------------------


def write_curation(directory: Path, spec: Path, tools: dict[str, str], *,
                   read_only: bool = True) -> Path:
    """A minimal curation naming `spec` by absolute path; `tools` maps name → operation."""
    config = directory / "curation.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1,
        "spec": str(spec),
        "backend": {"base_url": "http://127.0.0.1:9"},
        "read_only": read_only,
        "tools": {name: {"operation": operation} for name, operation in tools.items()},
    }, sort_keys=False), encoding="utf-8")
    return config


def index_operation_ids(doc: OpenAPIDocument) -> None:
    # Path items that are `$ref`s to other files (DigitalOcean's) have their operationId
    # indexed only after a lookup misses; make one so `by_label` carries them.
    doc.find(UNKNOWN_OPERATION)


def curate(doc: OpenAPIDocument, refs: list[OperationRef], limit: int = MAX_TOOLS
           ) -> dict[str, str]:
    """Up to `limit` tools: name → operationId when it is unique, else `METHOD /path`."""
    refs = sorted(refs, key=lambda r: r.operation_id is None)  # stable: ids first
    tools: dict[str, str] = {}
    for ref in refs[:limit]:
        unique = ref.operation_id is not None and len(doc.by_id[ref.operation_id]) == 1
        name = base = tool_name_for(ref.operation_id, ref.method, ref.path)
        n = 2
        while name in tools:
            name = f"{base[:60]}_{n}"
            n += 1
        tools[name] = ref.operation_id if unique and ref.operation_id else ref.label
    return tools


def get_operations(doc: OpenAPIDocument) -> list[OperationRef]:
    return [ref for ref in doc.by_label.values() if ref.method == "GET"]


def check_schema(schema: dict[str, Any], what: str) -> None:
    """A valid 2020-12 schema for an object, that survives a JSON round trip unchanged."""
    jsonschema.Draft202012Validator.check_schema(schema)
    text = json.dumps(schema, allow_nan=False)  # raises on datetimes, sets, NaN…
    assert json.loads(text) == schema, f"{what} changes in a JSON round trip (non-str keys?)"
    assert schema.get("type") == "object", f"{what} is not an object schema"


def check_tools(built: Facade, curated: dict[str, str]) -> None:
    assert [t.name for t in built.tools] == list(curated)
    for tool in built.tools:
        check_schema(tool.input_schema, f"{tool.name} input schema")
        if tool.output_schema is not None:
            check_schema(tool.output_schema, f"{tool.name} output schema")


def assert_unknown_operation(exc: LoadError, config: Path, tool: str, spec: Path) -> None:
    """The message points at the curated operation, in gcc style, and names the spec."""
    assert isinstance(exc, CurationError)
    first = str(exc).splitlines()[0]
    assert re.match(rf"{re.escape(str(config))}:\d+:\d+: tools\.{tool}\.operation: "
                    rf"unknown operation '{UNKNOWN_OPERATION}' in {re.escape(str(spec))}",
                    first), first


def load_or_fail(config: Path) -> Facade:
    try:
        return facade.load(config)
    except LoadError as exc:
        pytest.fail(f"expected tools, got a LoadError:\n{exc}")


# -- the corpus ------------------------------------------------------------------------


def test_corpus_is_present() -> None:
    assert MANIFEST.is_file(), f"the specs corpus is missing: {MANIFEST} does not exist"
    assert read_manifest(), f"no entries found in the table of {MANIFEST}"


def test_manifest_special_entries_are_classified() -> None:
    """Swagger 2.0, KNOWN-INVALID and operation-less rows must be listed in EXPECTED."""
    entries = read_manifest()
    paths = {e.path for e in entries}
    assert not set(EXPECTED) - paths, "EXPECTED names entries the MANIFEST no longer has"
    for entry in entries:
        outcome = EXPECTED.get(entry.path, Outcome.TOOLS)
        assert (entry.version == "2.0") == (outcome is Outcome.SWAGGER_2), entry.path
        if entry.version != "2.0":
            assert (entry.operations == 0) == (outcome is Outcome.NO_OPERATIONS), entry.path
        if "KNOWN-INVALID" in entry.notes:
            assert entry.path in EXPECTED, f"classify the known-invalid {entry.path}"


def test_corpus_entry(entry: Entry, tmp_path: Path) -> None:
    assert entry.spec.is_file(), f"{entry.spec} does not exist"
    outcome = EXPECTED.get(entry.path, Outcome.TOOLS)
    doc = load_spec(entry.spec)
    assert len(doc.by_label) == entry.operations, "the index disagrees with the MANIFEST"
    if outcome is Outcome.SWAGGER_2:
        check_swagger_2(entry, doc, tmp_path)
    elif outcome is Outcome.TOOLS:
        check_gets(entry, doc, tmp_path)
    elif outcome is Outcome.NO_OPERATIONS:
        check_no_operations(entry, tmp_path)
    else:
        check_no_get(entry, doc, tmp_path)


def check_gets(entry: Entry, doc: OpenAPIDocument, tmp_path: Path) -> None:
    index_operation_ids(doc)
    curated = curate(doc, get_operations(doc))
    assert curated, f"{entry.path} has no GET operation to curate"
    check_tools(load_or_fail(write_curation(tmp_path, entry.spec, curated)), curated)


def check_swagger_2(entry: Entry, doc: OpenAPIDocument, tmp_path: Path) -> None:
    assert doc.converted is not None and doc.version == "3.0"
    curated = curate(doc, get_operations(doc))
    assert curated == SWAGGER_2_TOOLS[entry.path]
    check_tools(load_or_fail(write_curation(tmp_path, entry.spec, curated)), curated)


def check_no_operations(entry: Entry, tmp_path: Path) -> None:
    config = write_curation(tmp_path, entry.spec, {"anything": UNKNOWN_OPERATION})
    with pytest.raises(LoadError) as info:
        facade.load(config)
    assert_unknown_operation(info.value, config, "anything", entry.spec)
    assert "(the document defines no operations under `paths`)" in str(info.value)


def check_no_get(entry: Entry, doc: OpenAPIDocument, tmp_path: Path) -> None:
    assert doc.by_label and not get_operations(doc)
    # The curation needs at least one tool, so name one that does not exist.
    config = write_curation(tmp_path, entry.spec, {"anything": UNKNOWN_OPERATION})
    with pytest.raises(LoadError) as info:
        facade.load(config)
    assert_unknown_operation(info.value, config, "anything", entry.spec)
    # Curating a real operation of a read-only façade is refused by its method…
    writes = list(doc.by_label.values())
    curated = curate(doc, writes, limit=1)
    config = write_curation(tmp_path, entry.spec, curated)
    with pytest.raises(CurationError, match=r"is not read-only: a read-only façade serves "
                       "only GET and HEAD"):
        facade.load(config)
    # …and with `read_only: false` the same schemas (circular, nested, discriminated
    # bodies) must still compile, so the corpus exercises them.
    curated = curate(doc, writes)
    check_tools(load_or_fail(write_curation(tmp_path, entry.spec, curated, read_only=False)),
                curated)


# -- specific documents ----------------------------------------------------------------

STRIPE = CORPUS / "stripe__openapi@e0123a3" / "openapi" / "spec3.json"
DIGITALOCEAN = (CORPUS / "digitalocean__openapi@62327d0" / "specification"
                / "DigitalOcean-public.v2.yaml")
MAX_TOOL_JSON_BYTES = 2 * 1024 * 1024


def test_stripe_tools_list_size_is_bounded(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Stripe's expandable objects nest without end; a tool must still stay small."""
    curated = {"get_customers": "GetCustomers", "get_charges": "GetCharges",
               "get_invoices": "GetInvoices", "get_subscriptions": "GetSubscriptions",
               "get_payment_intents": "GetPaymentIntents"}
    built = load_or_fail(write_curation(tmp_path, STRIPE, curated))
    listing = tool_listing(built)  # exactly what tools/list sends
    sizes = {t["name"]: len(json.dumps(t, separators=(",", ":")).encode()) for t in listing}
    total = len(json.dumps({"tools": listing}, separators=(",", ":")).encode())
    with capsys.disabled():
        print(f"\nStripe tools/list: {total:,} bytes for {len(listing)} tools: "
              + ", ".join(f"{name} {size:,}" for name, size in sizes.items()))
    assert list(sizes) == list(curated)
    for name, size in sizes.items():
        assert size < MAX_TOOL_JSON_BYTES, f"{name} is {size:,} bytes in tools/list"


def test_digitalocean_resolves_cross_file_refs(tmp_path: Path) -> None:
    """droplets_get: an operationId, parameters and response schemas all in other files."""
    built = load_or_fail(write_curation(tmp_path, DIGITALOCEAN,
                                        {"get_droplet": "droplets_get"}))
    (tool,) = built.tools
    assert tool.binding.path == "/v2/droplets/{droplet_id}"
    # resources/droplets/parameters.yml#/droplet_id
    droplet_id = tool.input_schema["properties"]["droplet_id"]
    assert droplet_id["type"] == "integer" and droplet_id["minimum"] == 1
    assert tool.input_schema["required"] == ["droplet_id"]
    # responses/existing_droplet.yml → models/droplet.yml → ./kernel.yml and
    # ../../images/models/image.yml
    assert tool.output_schema is not None
    body = tool.output_schema
    if tool.wrap_result:  # the response schema has `properties` but no `type: object`
        body = body["properties"]["result"]
    droplet = body["properties"]["droplet"]["properties"]
    assert "version" in droplet["kernel"]["properties"]
    created = droplet["image"]["properties"]["created_at"]
    # An unquoted YAML timestamp stays a string: the schema must be JSON.
    assert created["examples"] == ["2020-05-04T22:23:02Z"]
    check_schema(tool.output_schema, "droplets_get output schema")
