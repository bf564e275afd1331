"""Drift: what changed in the spec under the curated operations since `facade lock`.

`facade lock` records the shape of each curated operation (`facade.curate.lock`).
`facade diff --spec NEW` compares the lock with another version of the spec through the
same curation (its overlays applied to it); `facade check` does so for the curation's own
spec whenever its digest, or an overlay's, no longer matches. Only what the curation uses is compared. A change is *breaking* when the
curation stops loading or agents' calls stop working: a removed or renamed operation, a
removed or retyped parameter or body property, a new required one the curation does not
supply, a removed or retyped response field used by `include`/`redact`. Anything else that
changed (a moved path under the same operationId, a new optional parameter, a format) is
reported, but not breaking. Exit codes: `EXIT_OK`, `EXIT_BREAKING`, `EXIT_ERROR` (cannot
compare), `EXIT_CHANGED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facade.curate.lock import (
    DriftError,
    Shape,
    Unit,
    curated,
    digests,
    field_at,
    find_operation,
    lock_path,
    lock_sections,
    open_spec,
    overlay_digests,
    read_lock,
    read_units,
    shape_of,
)
from facade.errors import LoadError, PathPart, Problem, SpecError, did_you_mean
from facade.loading.curation import ToolCuration
from facade.loading.spec import OpenAPIDocument, OperationRef
from facade.loading.yamlsource import YAMLDocument

__all__ = ["EXIT_BREAKING", "EXIT_CHANGED", "EXIT_ERROR", "EXIT_OK", "Change", "Drift",
           "DriftError", "Report", "check_drift", "compare"]

EXIT_OK, EXIT_BREAKING, EXIT_ERROR, EXIT_CHANGED = 0, 1, 2, 3


@dataclass(frozen=True)
class Change:
    path: tuple[PathPart, ...]  # where in the curation it matters
    message: str
    breaking: bool
    hint: str | None = None


@dataclass
class Report:
    """The changes found, rendered like `check`'s problems (breaking ones as errors)."""

    doc: YAMLDocument | None
    lock: Path
    spec: str
    changes: list[Change]
    error: str | None = None  # the lock could not be read (for `check`)
    api: str = ""  # the API of a multi-API curation

    @property
    def breaking(self) -> int:
        return sum(c.breaking for c in self.changes) + (self.error is not None)

    @property
    def exit_code(self) -> int:
        return _exit_code(self.breaking, len(self.changes))

    def problems(self) -> list[Problem]:
        """The changes as problems in the curation (breaking ones as errors), in file
        order; an unreadable lock as one problem in the lock."""
        if self.error is not None or self.doc is None:
            message = (self.error or "").removeprefix(f"{self.lock}: ")
            return [Problem((), message, file=str(self.lock), code="drift/lock-unreadable")]
        doc = self.doc
        # Names (a tool, a parameter) are shown where the key is; `operation` and list
        # entries where their value is, as the loader shows them.
        return sorted((doc.problem(c.path, c.message, hint=c.hint, severity="error" if
                                   c.breaking else "warning", key=not c.path or isinstance(
                                       c.path[-1], str) and c.path[-1] != "operation",
                                   code="drift/breaking" if c.breaking else "drift/changed")
                       for c in self.changes), key=lambda p: (p.line or 0, p.column or 0))

    def lines(self) -> list[str]:
        if self.error is not None or self.doc is None:
            return [self.error or ""]
        lines = [p.format(self.doc.file) for p in self.problems()]
        which = f"api {self.api!r}: " if self.api else ""
        if not self.changes:
            return [f"{which}{self.spec}: no drift since {self.lock}"]
        return [*lines, f"{which}{self.spec}: {self.breaking} breaking change(s), "
                f"{len(self.changes) - self.breaking} other change(s) since {self.lock} "
                "(`facade lock` accepts them)"]

    def as_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "lock": str(self.lock), "breaking": self.breaking,
                "exit_code": self.exit_code,
                "changes": [{"at": ".".join(str(p) for p in c.path), "message": c.message,
                             "breaking": c.breaking} for c in self.changes]}


def _exit_code(breaking: int, changes: int) -> int:
    return EXIT_BREAKING if breaking else EXIT_CHANGED if changes else EXIT_OK


@dataclass
class Drift:
    """The reports of the APIs compared: one for a single-API curation, which it renders
    exactly as that report; one per API (each under its name) for a multi-API one."""

    reports: list[Report]
    multi: bool = False

    @property
    def changes(self) -> list[Change]:
        return [c for r in self.reports for c in r.changes]

    @property
    def breaking(self) -> int:
        return sum(r.breaking for r in self.reports)

    @property
    def exit_code(self) -> int:
        return _exit_code(self.breaking, len(self.changes))

    def problems(self) -> list[Problem]:
        return [p for r in self.reports for p in r.problems()]

    def lines(self) -> list[str]:
        return [line for r in self.reports for line in r.lines()]

    def as_json(self) -> dict[str, Any]:
        if not self.multi:
            return self.reports[0].as_json()
        return {"lock": str(self.reports[0].lock) if self.reports else None,
                "breaking": self.breaking, "exit_code": self.exit_code,
                "apis": {r.api: {k: v for k, v in r.as_json().items() if k != "lock"}
                         for r in self.reports}}


def compare(config: Path, spec_file: Path | None = None, lock_file: Path | None = None,
            api: str | None = None) -> Drift:
    """The changes between the lock and `spec_file` (default: the curation's spec). In a
    multi-API curation every API is compared with its own spec, or only `api` (with
    `spec_file`, when given).

    Raises:
        DriftError: the lock cannot be read, or `api` and `spec_file` do not fit the
            curation.
        LoadError: the curation or the spec cannot be read.
    """
    units, multi = read_units(config)
    names = [u.api for u in units]
    if api is not None:
        if not multi:
            raise DriftError(f"{config}: --api names an API of a multi-API curation "
                             "(`apis:`); this one has a single API")
        units = [u for u in units if u.api == api]
        if not units:
            hint = did_you_mean(api, names)
            raise DriftError(f"{config}: no API {api!r}" + (f" ({hint})" if hint else "") +
                             f"; the curation's APIs: {', '.join(names)}")
    elif multi and spec_file is not None:
        raise DriftError(f"{config}: --spec is one API's new spec: name that API with --api "
                         f"(the curation's APIs: {', '.join(names)})")
    lock_file = lock_file or lock_path(config)
    sections = lock_sections(read_lock(lock_file), lock_file, multi)
    reports = []
    for unit in units:
        path, display = (spec_file, str(spec_file)) if spec_file else (unit.spec_path,
                                                                        unit.display)
        reports.append(_compare_unit(sections, lock_file, config, unit, path, display))
    return Drift(reports, multi)


def _compare_unit(sections: dict[str, dict[str, Any]], lock_file: Path, config: Path,
                  unit: Unit, spec_path: Path, display: str) -> Report:
    lock = sections.get(unit.api)
    if lock is None:  # an API added since the lock
        return Report(unit.doc, lock_file, display, [Change(
            (), "not in the lock", False, "run `facade lock` to record it")], api=unit.api)
    spec = open_spec(config, unit.doc, unit.curation, spec_path, display)
    changes: list[Change] = []
    for (section, name), tool in curated(unit.curation).items():
        old = (lock.get(section) or {}).get(name)
        if old is None:
            changes.append(Change((section, name), "not in the lock", False,
                                  "run `facade lock` to record it"))
        else:
            changes += _compare(spec, section, name, tool, old)
    return Report(unit.doc, lock_file, display, changes, api=unit.api)


def check_drift(config: Path) -> Drift | None:
    """For `facade check`: None without a lock, while every API's spec files are
    unchanged or changed in nothing the lock compares, or when the curation or a spec
    cannot be read (which `check` reports itself). Otherwise the APIs whose files changed,
    compared."""
    path = lock_path(config)
    if not path.is_file():
        return None
    try:
        units, multi = read_units(config)
        sections = lock_sections(read_lock(path), path, multi)
        reports = [_compare_unit(sections, path, config, unit, unit.spec_path, unit.display)
                   for unit in units if not _unchanged(sections.get(unit.api), path, config,
                                                       unit)]
        drift = Drift(reports, multi)
        return drift if drift.changes or drift.breaking else None
    except DriftError as exc:
        return Drift([Report(None, path, str(config), [], error=str(exc))])
    except LoadError:
        return None  # `check` reports it


def _unchanged(lock: dict[str, Any] | None, path: Path, config: Path, unit: Unit) -> bool:
    """Whether the files an API's lock recorded are those of its spec, unchanged."""
    if lock is None:
        return False
    files = lock["spec"].get("files") or {}
    recorded = (path.parent / str(lock["spec"].get("file"))).resolve()
    overlays = lock["spec"].get("overlays") or {}
    return recorded == unit.spec_path.resolve() and all(
        (path.parent / f).is_file() for f in files) and \
        digests([path.parent / f for f in files], path.parent) == files and \
        overlay_digests(config, unit.curation, path.parent) == overlays


def _compare(spec: OpenAPIDocument, section: str, name: str, tool: ToolCuration,
             old: Shape) -> list[Change]:
    at: tuple[PathPart, ...] = (section, name, "operation")
    was = f"{old['method']} {old['path']}"
    ref = find_operation(spec, tool.operation)
    changes = []
    if ref is None:
        ref, message = _renamed(spec, old, was)
        hint = f"set `operation: {ref.operation_id or ref.label}`" if ref else None
        changes.append(Change(at, message, True, hint))
        if ref is None:
            return changes
    else:
        if ref.label != was:
            changes.append(Change(at, f"{was} is now {ref.label}", ref.method != old["method"]))
        if ref.operation_id != old["operation_id"]:
            changes.append(Change(at, f"the operationId of {ref.label} is now "
                                  f"{ref.operation_id!r} (was {old['operation_id']!r})", False))
    try:
        new = shape_of(spec, ref, tool)
    except SpecError as exc:
        return [*changes, Change(at, f"{ref.label} cannot be read: {exc.problems[0].message}",
                                 True)]
    changes += _compare_inputs(section, name, tool, old, new)
    return changes + _compare_fields(section, name, tool, old, new)


def _renamed(spec: OpenAPIDocument, old: Shape, was: str) -> tuple[OperationRef | None, str]:
    op_id = old["operation_id"]
    moved = find_operation(spec, op_id) if op_id else None
    if moved is not None:
        return moved, f"renamed: {was} (operationId {op_id!r}) is now {moved.label}"
    same = find_operation(spec, was)
    if same is not None:
        return same, f"renamed: the operationId of {was} is now {same.operation_id!r} " \
            f"(was {op_id!r})"
    return None, f"removed: {was}" + (f" (operationId {op_id!r})" if op_id else "") + \
        " is no longer in the spec"


def _param_at(section: str, name: str, tool: ToolCuration, param: str
              ) -> tuple[PathPart, ...]:
    return (section, name, "params", param) if param in tool.params else \
        (section, name, "operation")


def _supplied(tool: ToolCuration, param: str) -> bool:
    cur = tool.params.get(param)
    return cur is not None and (cur.is_fixed or cur.has_default)


def _compare_inputs(section: str, name: str, tool: ToolCuration, old: Shape, new: Shape
                    ) -> list[Change]:
    olds = {(e["in"], e["name"]): e for e in old["inputs"]}
    news = {(e["in"], e["name"]): e for e in new["inputs"]}
    changes = []
    for key in sorted(olds.keys() | news.keys()):
        was, now = olds.get(key), news.get(key)
        where = _param_at(section, name, tool, key[1])
        what = f"body property {key[1]!r}" if key[0] == "body" else \
            f"{key[0]} parameter {key[1]!r}"
        if now is None:
            elsewhere = [k[0] for k in news if k[1] == key[1] and k not in olds]
            moved = f" (it is now a {elsewhere[0]} parameter)" if elsewhere else ""
            changes.append(Change(where, f"{what} was removed{moved}", True))
        elif was is None:
            kind = "required" if now["required"] else "optional"
            changes.append(Change(where, f"new {kind} {what} ({now['type']})",
                                  now["required"] and not _supplied(tool, key[1])))
        else:
            if was["type"] != now["type"]:
                changes.append(Change(where, f"{what} changed type: {was['type']} → "
                                      f"{now['type']}", True))
            elif was.get("format") != now.get("format"):
                changes.append(Change(where, f"{what} changed format: {was.get('format')} → "
                                      f"{now.get('format')}", False))
            if now["required"] != was["required"]:
                state = "now required" if now["required"] else "no longer required"
                changes.append(Change(where, f"{what} is {state}", now["required"] and
                                      not _supplied(tool, key[1])))
    if old["body_media_type"] != new["body_media_type"] and old["body_media_type"] and \
            new["body_media_type"]:
        changes.append(Change((section, name, "operation"), "the request body is now "
                              f"{new['body_media_type']} (was {old['body_media_type']})", False))
    return changes


def _compare_fields(section: str, name: str, tool: ToolCuration, old: Shape, new: Shape
                    ) -> list[Change]:
    olds = {f["path"]: f for f in old["fields"]}
    changes = []
    for field in new["fields"]:
        where = field_at(section, name, tool, field["path"])
        used = "/".join(field["used_by"])
        was = (olds.get(field["path"]) or {}).get("type")
        if field["type"] is None:
            changes.append(Change(where, f"response field {field['path']!r} ({used}) is no "
                                  "longer in the response schema" if was else
                                  f"response field {field['path']!r} ({used}) is not in the "
                                  "response schema", True))
        elif was is not None and was != field["type"]:
            changes.append(Change(where, f"response field {field['path']!r} ({used}) changed "
                                  f"type: {was} → {field['type']}", True))
    if old["response_media_type"] != new["response_media_type"]:
        changes.append(Change((section, name, "operation"), "the response is now "
                              f"{new['response_media_type'] or 'empty'} (was "
                              f"{old['response_media_type'] or 'empty'})", False))
    return changes
