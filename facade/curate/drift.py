"""Drift: what changed in the spec under the curated operations since `facade lock`.

`facade lock` writes a lock file beside the curation (`curation.yaml` →
`curation.lock.json`). It records a digest of the spec (the root document and every file
its `$ref`s reach) and, for each curated tool and resource, the shape of its operation:
method and path, operationId, parameters (location, type, required), request body
properties, and the response fields that `include` and `redact` name, with their types.

`facade diff --spec NEW` compares the lock with another version of the spec through the
same curation; `facade check` does so for the curation's own spec whenever its digest no
longer matches. Only what the curation uses is compared. A change is *breaking* when the
curation stops loading or agents' calls stop working: a removed or renamed operation, a
removed or retyped parameter or body property, a new required one the curation does not
supply, a removed or retyped response field used by `include`/`redact`. Anything else that
changed (a moved path under the same operationId, a new optional parameter, a format) is
reported, but not breaking. Exit codes: `EXIT_OK`, `EXIT_BREAKING`, `EXIT_ERROR` (cannot
compare), `EXIT_CHANGED`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from facade.errors import CurationError, LoadError, PathPart, Problem, SpecError
from facade.loading.artifact import write_atomically
from facade.loading.curation import Curation, ToolCuration, parse_curation
from facade.loading.schemas import SchemaConverter
from facade.loading.spec import OpenAPIDocument, Operation, OperationRef, load_spec
from facade.loading.yamlsource import YAMLDocument, read_yaml
from facade.shaping import is_glob, parse_path
from facade.version import __version__

__all__ = ["EXIT_BREAKING", "EXIT_CHANGED", "EXIT_ERROR", "EXIT_OK", "Change", "DriftError",
           "Report", "check_drift", "compare", "drift_lines", "lock_path", "spec_files",
           "write_lock"]

EXIT_OK, EXIT_BREAKING, EXIT_ERROR, EXIT_CHANGED = 0, 1, 2, 3
FORMAT, FORMAT_VERSION = "facade-lock", 1
_REF = re.compile(r"""["']?\$ref["']?\s*:\s*["']?([^"'#\s,}\]]*)""")
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
Shape = dict[str, Any]


class DriftError(Exception):
    """The lock cannot be read, so nothing can be compared; the message says why."""


def lock_path(config: Path) -> Path:
    """Beside the curation: `curation.yaml` → `curation.lock.json`."""
    return config.with_name(config.stem + ".lock.json")


def spec_files(root: Path) -> list[Path]:
    """The spec's root file and every local file its `$ref`s reach, transitively. Found by
    scanning the text, without parsing: DigitalOcean's 1,334 files take a fraction of a
    second. A `$ref`-looking string in a description can only add a file, never miss one."""
    root = root.resolve()
    seen, queue = {root}, [root]
    while queue:
        file = queue.pop()
        try:
            text = file.read_text("utf-8-sig", errors="replace")
        except OSError:
            continue
        for match in _REF.finditer(text):
            where = match.group(1)
            if where and not _REMOTE.match(where):
                target = (file.parent / unquote(where)).resolve()
                if target not in seen and target.is_file():
                    seen.add(target)
                    queue.append(target)
    return [root, *sorted(seen - {root})]


def _relative(file: Path, base: Path) -> str:
    return Path(os.path.relpath(file.resolve(), base.resolve())).as_posix()


def _digests(files: list[Path], base: Path) -> dict[str, str]:
    return {_relative(f, base): "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()
            for f in files}


def _digest(files: dict[str, str]) -> str:
    text = json.dumps(files, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# -- shapes -------------------------------------------------------------------------------


def _curated(curation: Curation) -> dict[tuple[str, str], ToolCuration]:
    """Every curated operation, by (section, name): tools, and resources if any."""
    out: dict[tuple[str, str], ToolCuration] = {
        ("tools", name): tool for name, tool in curation.tools.items()}
    for name, resource in curation.resources.items():
        out[("resources", name)] = resource
    return out


def _deref(schema: Any, defs: dict[str, Any]) -> Any:
    for _ in range(16):
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not (isinstance(ref, str) and ref.startswith("#/$defs/")):
            break
        schema = defs.get(ref.removeprefix("#/$defs/"), {})
    return schema


def _type(schema: Any, defs: dict[str, Any], depth: int = 0) -> str:
    """A schema's type as one comparable string: `string`, `integer|null`,
    `array<object>`, `any` when the schema does not say."""
    schema = _deref(schema, defs)
    if not isinstance(schema, dict) or depth > 4:
        return "any"
    kind = schema.get("type")
    if isinstance(kind, str) or isinstance(kind, list):
        names = sorted(str(k) for k in (kind if isinstance(kind, list) else [kind]))
    elif isinstance(schema.get("anyOf") or schema.get("oneOf"), list):
        return "|".join(sorted({_type(s, defs, depth + 1)
                                for s in schema.get("anyOf") or schema["oneOf"]}))
    elif isinstance(schema.get("allOf"), list):
        return "&".join(sorted({_type(s, defs, depth + 1) for s in schema["allOf"]} - {"any"})) \
            or "any"
    else:
        names = ["object"] if "properties" in schema else ["array"] if "items" in schema \
            else ["any"]
    return "|".join(f"array<{_type(schema.get('items'), defs, depth + 1)}>" if n == "array"
                    else n for n in names)


def _child(schema: Any, name: str, defs: dict[str, Any], depth: int = 0) -> Any:
    """Property `name` of `schema`, through arrays and `allOf`/`anyOf`/`oneOf`."""
    schema = _deref(schema, defs)
    if not isinstance(schema, dict) or depth > 8:
        return None
    props = schema.get("properties")
    if isinstance(props, dict) and name in props:
        return props[name]
    for sub in [schema.get("items"), *(s for key in ("allOf", "anyOf", "oneOf")
                                       for s in schema.get(key) or [])]:
        found = _child(sub, name, defs, depth + 1) if isinstance(sub, dict) else None
        if found is not None:
            return found
    return None


def _entry(name: str, location: str, schema: Any, defs: dict[str, Any], required: bool
           ) -> dict[str, Any]:
    entry = {"in": location, "name": name, "type": _type(schema, defs), "required": required}
    fmt = (_deref(schema, defs) or {}).get("format") if isinstance(schema, dict) else None
    return {**entry, "format": fmt} if isinstance(fmt, str) else entry


def _inputs(spec: OpenAPIDocument, op: Operation) -> list[dict[str, Any]]:
    """Parameters, and request body properties as `in: body` entries."""
    conv = SchemaConverter(spec.resolver, version=spec.version, mode="input")
    out = [_entry(p.name, p.location, conv.convert(p.schema, p.base), conv.defs, p.required)
           for p in op.parameters]
    if op.body is not None:
        schema = _deref(conv.convert(op.body.schema, op.body.base), conv.defs)
        props = schema.get("properties") if isinstance(schema, dict) else None
        if isinstance(props, dict) and props:
            required = set(schema.get("required") or [])
            out += [_entry(n, "body", s, conv.defs, op.body.required and n in required)
                    for n, s in props.items()]
        else:
            out.append(_entry("body", "body", schema, conv.defs, op.body.required))
    return sorted(out, key=lambda e: (e["in"], e["name"]))


def _fields(spec: OpenAPIDocument, op: Operation, tool: ToolCuration) -> list[dict[str, Any]]:
    """The response fields `include` and `redact` name, with their types (None: absent)."""
    used: dict[str, list[str]] = {}
    for key in ("include", "redact"):
        for path in getattr(tool.response, key) or []:
            if key == "include" or not is_glob(path):
                used.setdefault(path, []).append(key)
    if not used:
        return []
    conv = SchemaConverter(spec.resolver, version=spec.version, mode="output")
    resp = op.response
    schema = conv.convert(resp.schema, resp.base) if resp is not None else {}
    out = []
    for path, keys in used.items():
        node: Any = schema
        try:
            for part in parse_path(path):
                node = _child(node, part, conv.defs) if part else node
                if node is None:
                    break
        except ValueError:
            node = None  # a malformed path: the loader reports it
        entry: dict[str, Any] = {"path": path, "used_by": keys,
                                 "type": None if node is None else _type(node, conv.defs)}
        out.append(entry)
    return out


def _shape(spec: OpenAPIDocument, ref: OperationRef, tool: ToolCuration) -> Shape:
    op = spec.operation(ref)
    resp = op.response
    return {"operation": tool.operation, "operation_id": ref.operation_id,
            "method": ref.method, "path": ref.path, "inputs": _inputs(spec, op),
            "body_media_type": op.body.media_type if op.body else None,
            "response_media_type": resp.media_type if resp else None,
            "fields": _fields(spec, op, tool)}


def _find(spec: OpenAPIDocument, key: str) -> OperationRef | None:
    found = spec.find(key)
    return found if isinstance(found, OperationRef) else None


# -- the lock ---------------------------------------------------------------------------


def _read_curation(config: Path) -> tuple[YAMLDocument, Curation, Path, str]:
    doc = read_yaml(config)
    curation = parse_curation(doc)
    spec = config.parent / curation.spec
    display = os.path.relpath(spec) if not Path(curation.spec).is_absolute() else str(spec)
    return doc, curation, spec, display


@dataclass(frozen=True)
class LockResult:
    path: Path
    tools: int
    files: int
    digest: str


def write_lock(config: Path, output: Path | None = None) -> LockResult:
    """Record the spec's digest and each curated operation's shape.

    Raises:
        LoadError: the curation or the spec cannot be read, or names an operation, or a
            response field, the spec does not have.
        OSError: the lock cannot be written.
    """
    doc, curation, spec_path, display = _read_curation(config)
    spec = load_spec(spec_path, display)
    shapes: dict[str, dict[str, Shape]] = {}
    problems: list[Problem] = []
    for (section, name), tool in _curated(curation).items():
        at: tuple[PathPart, ...] = (section, name, "operation")
        ref = _find(spec, tool.operation)
        if ref is None:
            problems.append(doc.problem(at, f"operation {tool.operation!r} is not (or not "
                                        f"uniquely) in {display}", hint="run `facade check`"))
            continue
        try:
            shape = _shape(spec, ref, tool)
        except SpecError as exc:
            problems += [doc.problem(at, f"{exc.file}: {p.message}") for p in exc.problems]
            continue
        for field in shape["fields"]:
            if field["type"] is None:
                problems.append(doc.problem(_field_at(section, name, tool, field["path"]),
                                            f"{field['path']!r} is not in the response schema",
                                            hint="run `facade check`"))
        shapes.setdefault(section, {})[name] = shape
    if problems:
        raise CurationError(doc.file, problems)
    target = output or lock_path(config)
    files = _digests(spec_files(spec_path), target.parent)
    digest = _digest(files)
    lock = {"format": FORMAT, "version": FORMAT_VERSION, "facade": __version__,
            "spec": {"file": _relative(spec_path, target.parent), "digest": digest,
                     "files": files}, **shapes}
    write_atomically(target, json.dumps(lock, indent=2, ensure_ascii=False) + "\n")
    return LockResult(target, sum(len(s) for s in shapes.values()), len(files), digest)


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DriftError(f"{path}: no lock file; run `facade lock` first") from None
    except (OSError, ValueError) as exc:
        raise DriftError(f"{path}: cannot read the lock ({exc}); run `facade lock` "
                         "again") from None
    if not isinstance(lock, dict) or lock.get("format") != FORMAT or \
            lock.get("version") != FORMAT_VERSION or not isinstance(lock.get("spec"), dict):
        raise DriftError(f"{path}: not a version {FORMAT_VERSION} facade lock; run "
                         "`facade lock` again")
    return lock


# -- comparing ----------------------------------------------------------------------------


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

    def lines(self) -> list[str]:
        if self.error is not None or self.doc is None:
            return [self.error or ""]
        doc = self.doc
        # Names (a tool, a parameter) are shown where the key is; `operation` and list
        # entries where their value is, as the loader shows them.
        problems = sorted((doc.problem(c.path, c.message, hint=c.hint, severity="error" if
                                       c.breaking else "warning", key=isinstance(
                                           c.path[-1], str) and c.path[-1] != "operation")
                           for c in self.changes),
                          key=lambda p: (p.line or 0, p.column or 0))
        lines = [p.format(doc.file) for p in problems]
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
        DriftError: the lock cannot be read.
        LoadError: the curation or the spec cannot be read.
    """
    lock_file = lock_file or lock_path(config)
    lock = _read_lock(lock_file)
    doc, curation, spec_path, display = _read_curation(config)
    if spec_file is not None:
        spec_path, display = spec_file, str(spec_file)
    spec = load_spec(spec_path, display)
    changes: list[Change] = []
    for (section, name), tool in _curated(curation).items():
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
        lock = _read_lock(path)
        spec_path = _read_curation(config)[2]
        files = lock["spec"].get("files") or {}
        recorded = (path.parent / str(lock["spec"].get("file"))).resolve()
        if recorded == spec_path.resolve() and all(
                (path.parent / f).is_file() for f in files) and \
                _digests([path.parent / f for f in files], path.parent) == files:
            return None
        return compare(config, None, path)
    except DriftError as exc:
        return Report(None, path, str(config), [], error=str(exc))
    except LoadError:
        return None  # `check` reports it


def drift_lines(config: Path) -> tuple[list[str], bool]:
    """`check_drift` as `facade check` prints it: the lines, and whether any breaks."""
    report = check_drift(config)
    if report is None or not (report.changes or report.breaking):
        return [], False
    return report.lines(), report.breaking > 0


def _compare(spec: OpenAPIDocument, section: str, name: str, tool: ToolCuration,
             old: Shape) -> list[Change]:
    at: tuple[PathPart, ...] = (section, name, "operation")
    was = f"{old['method']} {old['path']}"
    ref = _find(spec, tool.operation)
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
        new = _shape(spec, ref, tool)
    except SpecError as exc:
        return [*changes, Change(at, f"{ref.label} cannot be read: {exc.problems[0].message}",
                                 True)]
    changes += _compare_inputs(section, name, tool, old, new)
    return changes + _compare_fields(section, name, tool, old, new)


def _renamed(spec: OpenAPIDocument, old: Shape, was: str) -> tuple[OperationRef | None, str]:
    op_id = old["operation_id"]
    moved = _find(spec, op_id) if op_id else None
    if moved is not None:
        return moved, f"renamed: {was} (operationId {op_id!r}) is now {moved.label}"
    same = _find(spec, was)
    if same is not None:
        return same, f"renamed: the operationId of {was} is now {same.operation_id!r} " \
            f"(was {op_id!r})"
    return None, f"removed: {was}" + (f" (operationId {op_id!r})" if op_id else "") + \
        " is no longer in the spec"


def _param_at(section: str, name: str, tool: ToolCuration, param: str
              ) -> tuple[PathPart, ...]:
    return (section, name, "params", param) if param in tool.params else \
        (section, name, "operation")


def _field_at(section: str, name: str, tool: ToolCuration, path: str) -> tuple[PathPart, ...]:
    for key in ("include", "redact"):
        entries = getattr(tool.response, key) or []
        if path in entries:
            return (section, name, "response", key, entries.index(path))
    return (section, name, "response")


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
        where = _field_at(section, name, tool, field["path"])
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
