"""What the recorded backend answers say about the spec: `facade test`'s deviation report.

Each fixture's recorded answer (a 2xx JSON one) is compared with the response schema the
spec documents for its operation, overlays applied, by `facade.deviations`. The
report names, per fixture, each deviation's JSON path in the answer, its documented and
actual type, never a value. `suggested_overlays` turns them into the overlay that fixes
them (`facade.curate.suggestion`), one per spec.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from facade.call.scrub import MASK
from facade.deviations import Deviation, Site, deviations
from facade.curate.fixtures import FixtureError, read_fixture
from facade.curate.suggestion import Suggestion, suggest_overlay
from facade.errors import SpecError
from facade.loading.spec import OpenAPIDocument, OperationRef, Response, pointer_for
from facade.tools import Facade

__all__ = ["Conformance", "check_fixtures", "overlay_text", "suggested_overlays"]


@dataclass(frozen=True)
class Conformance:
    """The deviations of one fixture's recorded answer, or why it was not compared."""

    path: Path
    api: str = ""
    deviations: tuple[Deviation, ...] = ()
    skipped: str | None = None

    def lines(self) -> list[str]:
        return [f"  {d.describe()}" for d in self.deviations]


def check_fixtures(facade: Facade, specs: dict[str, OpenAPIDocument], paths: Sequence[Path]
                   ) -> list[Conformance]:
    """The deviations of each fixture's answer from the schema `specs` document for it."""
    return [_check(facade, specs, path) for path in paths]


def _check(facade: Facade, specs: dict[str, OpenAPIDocument], path: Path) -> Conformance:
    try:
        fixture = read_fixture(path)
    except FixtureError as exc:
        return Conformance(path, skipped=str(exc))
    definition = next((t for t in facade.tools if t.name == fixture.tool), None)
    spec = specs.get(definition.api) if definition is not None else None
    found = spec.find(fixture.operation) if spec is not None else None
    if definition is None or spec is None or not isinstance(found, OperationRef):
        return Conformance(path, skipped=f"no operation {fixture.operation} to compare with")
    if not 200 <= fixture.status < 300 or not _is_json(fixture.headers):
        return Conformance(path, definition.api, skipped="not a JSON success answer")
    try:
        answer = json.loads(fixture.body)
    except ValueError:
        return Conformance(path, definition.api, skipped="the recorded body is not JSON")
    try:
        response = spec.operation(found).response
        if response is None or response.schema is None:
            return Conformance(path, definition.api, skipped="no documented response schema")
        site = _site(spec, found, response)

        def resolve(ref: str, at: Site) -> tuple[Any, Site]:
            value, file, key = spec.resolver.resolve(ref, at[0])
            return value, (file, key.partition("#")[2])

        seen = deviations(response.schema, answer, None, resolve=resolve, site=site,
                          nullable_keyword=spec.version != "3.1", undocumented=True,
                          masked=MASK)
    except SpecError as exc:
        return Conformance(path, definition.api, skipped=exc.problems[0].message)
    return Conformance(path, definition.api, tuple(seen))


def _is_json(headers: dict[str, str]) -> bool:
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _site(spec: OpenAPIDocument, ref: OperationRef, response: Response) -> Site:
    """Where the response schema is: its pointer in the root document when it is written
    there inline, else its file alone (fixes inside it cannot be targeted)."""
    pointer = pointer_for("paths", ref.path, ref.method.lower(), "responses",
                          response.status, "content", str(response.media_type), "schema")
    node: Any = spec.data
    for token in pointer[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node.get(token) if isinstance(node, dict) else None
    if node is response.schema:
        return spec.file, pointer[1:]
    return response.base, "?"  # not a pointer: nothing is found there


def suggested_overlays(checked: Sequence[Conformance], specs: dict[str, OpenAPIDocument]
                       ) -> dict[str, Suggestion]:
    """The overlay fixing each API's deviations, by API name."""
    out = {}
    for api, spec in specs.items():
        found = [d for c in checked if c.api == api for d in c.deviations]
        if found:
            out[api] = suggest_overlay(found, spec)
    return out


def overlay_text(overlay: dict[str, Any]) -> str:
    """An overlay as YAML, with a note on what to do with it."""
    head = ("# Written by `facade test --suggest-overlay` from recorded backend answers.\n"
            "# Review each action, then list this file under `overlays:` in the curation.\n")
    return head + yaml.safe_dump(overlay, sort_keys=False, allow_unicode=True, width=100)
