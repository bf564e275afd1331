"""Load time: curation.yaml + the OpenAPI document → a validated, frozen `Facade`.

Every problem found is collected and raised once, as one `CurationError`, so a curator
fixes everything in one pass: when the curation's shape is wrong, what has the right shape
is still checked against the spec (`facade.loading.salvage`). Only curated operations are resolved. A single-API curation
is loaded by `facade.loading.single`; one with `apis:` by `facade.loading.multi`, which runs the
single-API loader once per API and merges the results.
"""

from __future__ import annotations

import os
from pathlib import Path

from facade.errors import CurationError, LoadError, Problem
from facade.loading.curation import MultiCuration, parse_any_curation
from facade.loading.multi import api_sections, compile_multi
from facade.loading.salvage import cross_check
from facade.loading.environ import expand_env
from facade.loading.single import Compiled, SingleLoader
from facade.loading.spec import OpenAPIDocument
from facade.loading.yamlsource import read_yaml
from facade.tools import Facade

__all__ = ["DEFAULT_CONFIG", "Compiled", "check", "compile_facade", "documents", "expand_env",
           "load"]

DEFAULT_CONFIG = "curation.yaml"


def load(config: str | Path = DEFAULT_CONFIG, *, environ: dict[str, str] | None = None,
         compiled: Compiled | None = None) -> Facade:
    """Read, validate and compile a curation and its spec.

    With `compiled` (tools a `facade build` artifact stored), the spec is not read: only
    the curation's environment-dependent settings are derived.

    Raises:
        CurationError: the curation has problems (all of them are listed).
        SpecError: the OpenAPI document cannot be used.
    """
    return compile_facade(config, environ=environ, compiled=compiled)[0]


def compile_facade(config: str | Path = DEFAULT_CONFIG, *,
                   environ: dict[str, str] | None = None, compiled: Compiled | None = None
                   ) -> tuple[Facade, Compiled]:
    """`load`, also returning the spec-derived part, with the spec files it read."""
    doc = read_yaml(config)
    environ = environ or dict(os.environ)
    try:
        curation = parse_any_curation(doc)
    except CurationError as exc:
        # Shape problems first found; what has the right shape is still checked against
        # the spec, so that a typo in one tool does not hide the problems of the others.
        shape = list(exc.problems)
        raise CurationError(exc.file, [*shape, *cross_check(doc, shape, Path(config),
                                                             environ)]) from None
    if isinstance(curation, MultiCuration):
        return compile_multi(doc, curation, Path(config), environ, compiled)
    loader = SingleLoader(doc, curation, Path(config), environ)
    facade = loader.run(compiled)
    assert loader.compiled is not None  # run() raised otherwise
    return facade, loader.compiled


def check(config: str | Path = DEFAULT_CONFIG) -> tuple[Facade | None, LoadError | None]:
    """Load, returning the error instead of raising it (for the CLI and reloads)."""
    try:
        return load(config), None
    except LoadError as exc:
        return None, exc


def documents(config: str | Path = DEFAULT_CONFIG) -> dict[str, OpenAPIDocument]:
    """Each API's spec as the loader reads it, overlays applied, by API name (`""` for a
    single-API curation). For the curator's commands that look at the spec itself.

    Raises:
        LoadError: the curation, a spec or an overlay cannot be read or applied.
    """
    doc = read_yaml(config)
    curation = parse_any_curation(doc)
    if isinstance(curation, MultiCuration):
        loaders = [(api, SingleLoader(scoped, single, Path(config), {}))
                   for api, _, scoped, single in api_sections(doc, curation)]
    else:
        loaders = [("", SingleLoader(doc, curation, Path(config), {}))]
    found: dict[str, OpenAPIDocument] = {}
    problems: list[Problem] = []
    for api, loader in loaders:
        spec = loader.document()
        problems += loader.problems
        if spec is not None:
            found[api] = spec
    if problems:
        raise CurationError(doc.file, problems)
    return found
