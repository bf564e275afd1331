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
    MultiAPIUnsupported,
    Shape,
    curated,
    digests,
    field_at,
    find_operation,
    lock_path,
    open_spec,
    overlay_digests,
    read_curation,
    read_lock,
    shape_of,
)
from facade.errors import LoadError, PathPart, Problem, SpecError
from facade.loading.curation import Curation, ToolCuration
from facade.loading.spec import OpenAPIDocument, OperationRef
from facade.loading.yamlsource import YAMLDocument

__all__ = ["EXIT_BREAKING", "EXIT_CHANGED", "EXIT_ERROR", "EXIT_OK", "Change", "DriftError",
           "Report", "check_drift", "compare"]

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

    @property
    def breaking(self) -> int:
        return sum(c.breaking for c in self.changes) + (self.error is not None)

    @property
    def exit_code(self) -> int:
        return EXIT_BREAKING if self.breaking else EXIT_CHANGED if self.changes else EXIT_OK

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
                                   c.breaking else "warning", key=isinstance(
                                       c.path[-1], str) and c.path[-1] != "operation",
                                   code="drift/breaking" if c.breaking else "drift/changed")
                       for c in self.changes), key=lambda p: (p.line or 0, p.column or 0))

    def lines(self) -> list[str]:
        if self.error is not None or self.doc is None:
            return [self.error or ""]
        lines = [p.format(self.doc.file) for p in self.problems()]
        if not self.changes:
            return [f"{self.spec}: no drift since {self.lock}"]
        return [*lines, f"{self.spec}: {self.breaking} breaking change(s), "
                f"{len(self.changes) - self.breaking} other change(s) since {self.lock} "
                "(`facade lock` accepts them)"]

    def as_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "lock": str(self.lock), "breaking": self.breaking,
                "exit_code": self.exit_code,
                "changes": [{"at": ".".join(str(p) for p in c.path), "message": c.message,
                             "breaking": c.breaking} for c in self.changes]}


def compare(config: Path, spec_file: Path | None = None, lock_file: Path | None = None
            ) -> Report:
    """The changes between the lock and `spec_file` (default: the curation's spec).

    Raises:
        DriftError: the lock cannot be read, or the curation has `apis:`.
        LoadError: the curation or the spec cannot be read.
    """
    doc, curation, spec_path, display = read_curation(config)
    lock_file = lock_file or lock_path(config)
    lock = read_lock(lock_file)
    if spec_file is not None:
        spec_path, display = spec_file, str(spec_file)
    return _compare_all(lock, lock_file, config, doc, curation, spec_path, display)


def _compare_all(lock: dict[str, Any], lock_file: Path, config: Path, doc: YAMLDocument,
                 curation: Curation, spec_path: Path, display: str) -> Report:
    spec = open_spec(config, doc, curation, spec_path, display)
    changes: list[Change] = []
    for (section, name), tool in curated(curation).items():
        old = (lock.get(section) or {}).get(name)
        if old is None:
            changes.append(Change((section, name), "not in the lock", False,
                                  "run `facade lock` to record it"))
        else:
            changes += _compare(spec, section, name, tool, old)
    return Report(doc, lock_file, display, changes)


def check_drift(config: Path) -> Report | None:
    """For `facade check`: None without a lock, while the spec's files are unchanged, or
    when the curation or the spec cannot be read (which `check` reports itself)."""
    path = lock_path(config)
    if not path.is_file():
        return None
    try:
        lock = read_lock(path)
        doc, curation, spec_path, display = read_curation(config)
        files = lock["spec"].get("files") or {}
        recorded = (path.parent / str(lock["spec"].get("file"))).resolve()
        overlays = lock["spec"].get("overlays") or {}
        if recorded == spec_path.resolve() and all(
                (path.parent / f).is_file() for f in files) and \
                digests([path.parent / f for f in files], path.parent) == files and \
                overlay_digests(config, curation, path.parent) == overlays:
            return None
        return _compare_all(lock, path, config, doc, curation, spec_path, display)
    except MultiAPIUnsupported:
        return None
    except DriftError as exc:
        return Report(None, path, str(config), [], error=str(exc))
    except LoadError:
        return None  # `check` reports it


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
