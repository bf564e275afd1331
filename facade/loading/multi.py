"""Load time for multi-API curations (`apis:`): each API loaded alone, then merged.

Each API is loaded by the single-API `SingleLoader` (`facade.loading.single`) through a
`ScopedDocument`, a view of the curation whose positions and paths are prefixed with `("apis", name)`, so every message
keeps the exact file:line:col it has in a single-API curation. The merged `Facade` holds
every API's backend; each tool records its API. Final names are checked for collisions
across APIs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from facade.errors import CurationError, PathPart, Problem
from facade.loading.curation import (
    TOOL_NAME_PATTERN,
    APICuration,
    Curation,
    MultiCuration,
    ServerInfo,
)
from facade.loading.extras import build_prompts
from facade.loading.server_section import per_caller, serve_settings
from facade.loading.environ import EnvExpander
from facade.loading.single import Compiled, SingleLoader
from facade.loading.spec import locate_spec
from facade.loading.yamlsource import YAMLDocument
from facade.tools import BackendSettings, Facade, ResourceDefinition, ToolDefinition

__all__ = ["ScopedDocument", "api_sections", "compile_multi"]

_TOOL_NAME = re.compile(TOOL_NAME_PATTERN)


class ScopedDocument(YAMLDocument):
    """The part of a curation under `prefix`, addressed with paths relative to it."""

    def __init__(self, doc: YAMLDocument, prefix: tuple[PathPart, ...]) -> None:
        super().__init__(doc.file, doc.data, doc.values, doc.keys)
        self.prefix = prefix

    def problem(
        self, path: tuple[PathPart, ...], message: str, *, hint: str | None = None,
        key: bool = False, severity: str = "error", code: str | None = None,
    ) -> Problem:
        return super().problem((*self.prefix, *path), message, hint=hint, key=key,
                               severity=severity, code=code)


def api_sections(doc: YAMLDocument, multi: MultiCuration
                 ) -> Iterator[tuple[str, APICuration, ScopedDocument, Curation]]:
    """Each API of a multi-API curation: its name, its section, the document scoped to
    that section (problems are reported at `apis.<name>.…`), and the section as the
    single-API curation the loader, the lock and the lint take."""
    for api, ac in multi.apis.items():
        yield api, ac, ScopedDocument(doc, ("apis", api)), ac.as_curation(ServerInfo())


def final_name(namespace: str | None, name: str) -> str:
    """A tool or resource name as clients see it: `<namespace>_<name>`, or `name`."""
    return f"{namespace}_{name}" if namespace else name


class _Names:
    """Final names already taken, with where each was declared, to report collisions."""

    def __init__(self, doc: YAMLDocument, what: str, problems: list[Problem]) -> None:
        self.doc, self.what, self.problems = doc, what, problems
        self.seen: dict[str, tuple[PathPart, ...]] = {}

    def claim(self, name: str, at: tuple[PathPart, ...]) -> bool:
        first = self.seen.get(name)
        if first is None:
            self.seen[name] = at
            return True
        pos = self.doc.locate(first, key=True)
        where = ".".join(map(str, first)) + (f" (line {pos[0]})" if pos else "")
        self.problems.append(self.doc.problem(
            at, f"{self.what} {name!r} is also declared at {where}", key=True,
            hint="set `namespace` on one of the APIs, or rename one of them"))
        return False


class _Merged:
    """The APIs loaded so far, merged: final names claimed, problems collected."""

    def __init__(self, doc: YAMLDocument) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.spec_warnings: list[Problem] = []  # the part of the warnings an artifact stores
        self.tools: list[ToolDefinition] = []
        self.resources: list[ResourceDefinition] = []
        self.backends: dict[str, BackendSettings] = {}
        self.sources: list[Path] = []
        self.overlays: list[Path] = []
        self.titles: list[str] = []
        self._tool_names = _Names(doc, "tool", self.problems)
        self._resource_names = _Names(doc, "resource", self.problems)
        self._uris = _Names(doc, "resource URI", self.problems)

    def failed(self, exc: CurationError) -> None:
        self.problems += [p for p in exc.problems if p.severity == "error"]
        self.warnings += [p for p in exc.problems if p.severity != "error"]

    def add(self, api: str, namespace: str | None, facade: Facade, compiled: Compiled
            ) -> None:
        self.backends[api] = facade.backend
        self.warnings += facade.warnings
        self.spec_warnings += compiled.warnings
        self.sources += [s for s in compiled.sources if s not in self.sources]
        self.overlays += [s for s in compiled.overlays if s not in self.overlays]
        self.titles.append(compiled.name)
        at: tuple[PathPart, ...] = ("apis", api)
        for tool in facade.tools:
            name, where = final_name(namespace, tool.name), (*at, "tools", tool.name)
            if self._is_valid(name, where) and self._tool_names.claim(name, where):
                self.tools.append(replace(tool, name=name, api=api))
        for resource in facade.resources:
            name, where = final_name(namespace, resource.name), (*at, "resources", resource.name)
            if self._is_valid(name, where) and self._resource_names.claim(name, where) \
                    and self._uris.claim(resource.uri, (*where, "uri")):
                self.resources.append(replace(resource, name=name, tool=replace(
                    resource.tool, name=name, api=api)))

    def _is_valid(self, name: str, at: tuple[PathPart, ...]) -> bool:
        if _TOOL_NAME.match(name):
            return True
        self.problems.append(self.doc.problem(
            at, f"the namespaced name {name!r} is over 64 characters", key=True,
            hint="shorten the namespace or the name"))
        return False


def compile_multi(doc: YAMLDocument, multi: MultiCuration, config: Path,
                  environ: dict[str, str], stored: Compiled | None = None
                  ) -> tuple[Facade, Compiled]:
    """Load every API of `multi` and merge them into one `Facade`; with `stored` (an
    artifact's merged tools), no spec is read."""
    merged = _Merged(doc)
    for api, ac, scoped, curation in api_sections(doc, multi):
        loader = SingleLoader(scoped, curation, config, environ,
                              inbound_auth=multi.server.auth is not None)
        try:
            facade = loader.run(None if stored is None else _part(stored, api, ac.namespace))
        except CurationError as exc:
            merged.failed(exc)
            continue
        assert loader.compiled is not None  # run() raised otherwise
        merged.add(api, ac.namespace, facade, loader.compiled)
    problems = merged.problems

    serving = serve_settings(multi.server, EnvExpander(doc, environ, problems), problems, doc,
                             [name for api, ac in multi.apis.items() for name in per_caller(
                                 [*ac.tools.items(), *ac.resources.items()], f"apis.{api}.")])
    # Every declared name, built or not: a tool with problems of its own is not also
    # reported as unknown by the prompts that name it.
    declared = [final_name(ac.namespace, name) for ac in multi.apis.values()
                for name in ac.tools]
    prompts = build_prompts(doc, multi.prompts, declared, problems, merged.warnings)
    if problems:
        raise CurationError(doc.file, [*problems, *merged.warnings])
    name = stored.name if stored is not None else \
        multi.server.name or " + ".join(merged.titles)
    sources = stored.sources if stored is not None else tuple(merged.sources)
    overlays = stored.overlays if stored is not None else tuple(merged.overlays)
    facade = Facade(
        name=name, instructions=multi.server.instructions,
        read_only=all(ac.read_only for ac in multi.apis.values()),
        backend=next(iter(merged.backends.values())), tools=tuple(merged.tools),
        config_file=doc.file, spec_file=", ".join(_spec_files(multi, config)),
        warnings=tuple(merged.warnings), serving=serving, resources=tuple(merged.resources),
        prompts=prompts, backends=merged.backends, sources=sources)
    return facade, Compiled(name, tuple(merged.tools), tuple(merged.spec_warnings),
                            sources, tuple(merged.resources), overlays)


def _part(stored: Compiled, api: str, namespace: str | None) -> Compiled:
    """One API's share of a merged `Compiled`, with the names as its curation writes them."""
    prefix = f"{namespace}_" if namespace else ""
    return Compiled(
        stored.name,
        tuple(replace(t, name=t.name.removeprefix(prefix), api="") for t in stored.tools
              if t.api == api),
        tuple(w for w in stored.warnings if w.path[:2] == ("apis", api)),
        (),
        tuple(replace(r, name=r.name.removeprefix(prefix), tool=replace(
            r.tool, name=r.tool.name.removeprefix(prefix), api=""))
            for r in stored.resources if r.tool.api == api))


def _spec_files(multi: MultiCuration, config: Path) -> list[str]:
    return [locate_spec(config, ac.spec)[1] for ac in multi.apis.values()]
