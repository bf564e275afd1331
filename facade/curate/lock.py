"""`facade lock`: the spec's digest and the shape of each curated operation, on file.

`facade lock` writes a lock file beside the curation (`curation.yaml` →
`curation.lock.json`). It records a digest of the spec (the root document and every file
its `$ref`s reach, and the curation's overlays, which are applied before shapes are taken:
changing an overlay is drift like changing the spec) and, for each curated tool and resource, the shape of its operation:
method and path, operationId, parameters (location, type, required), request body
properties, and the response fields that `include` and `redact` name, with their types.
`facade.curate.drift` compares a lock with a spec.

The lock of a single-API curation is format version 1: `spec` and the shapes under
`tools` and `resources` at the top. A multi-API curation's (`apis:`) is version 2: the
same for each API under `apis.<name>`. Both are read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from facade.errors import CurationError, LoadError, PathPart, Problem, SpecError
from facade.loading.artifact import write_atomically
from facade.loading.curation import (
    Curation,
    MultiCuration,
    ToolCuration,
    parse_any_curation,
)
from facade.loading.multi import api_sections
from facade.loading.overlays import read_overlays
from facade.loading.schemas import SchemaConverter
from facade.loading.spec import OpenAPIDocument, Operation, OperationRef, load_spec, locate_spec
from facade.loading.yamlsource import YAMLDocument, read_yaml
from facade.shaping import is_glob, parse_path
from facade.version import __version__

__all__ = ["DriftError", "LockResult", "Shape", "Unit", "curated", "digests", "field_at",
           "find_operation", "lock_path", "lock_sections", "open_spec", "overlay_digests",
           "read_lock", "read_units", "shape_of", "spec_files", "write_lock"]

FORMAT, FORMAT_VERSION, MULTI_VERSION = "facade-lock", 1, 2
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


def digests(files: list[Path], base: Path) -> dict[str, str]:
    return {_relative(f, base): "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()
            for f in files}


def _digest(files: dict[str, str], overlays: dict[str, str] | None = None) -> str:
    every = {**files, **{f"overlay:{name}": d for name, d in (overlays or {}).items()}}
    text = json.dumps(every, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def overlay_digests(config: Path, curation: Curation, base: Path) -> dict[str, str] | None:
    """The digests of the curation's overlays, by path relative to `base`; None when one
    of them cannot be read."""
    files = [config.parent / name for name in curation.overlays]
    if not all(f.is_file() for f in files):
        return None
    return digests(files, base)


def open_spec(config: Path, doc: YAMLDocument, curation: Curation, spec_path: Path,
              display: str) -> OpenAPIDocument:
    """The spec at `spec_path` with the curation's overlays applied, as the loader has it.

    Raises:
        LoadError: the spec, or an overlay, cannot be read or applied.
    """
    overlays, problems = read_overlays(doc, curation.overlays, config)
    if problems:
        raise CurationError(doc.file, problems)
    return load_spec(spec_path, display, overlays)


# -- shapes -------------------------------------------------------------------------------


def curated(curation: Curation) -> dict[tuple[str, str], ToolCuration]:
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


def shape_of(spec: OpenAPIDocument, ref: OperationRef, tool: ToolCuration) -> Shape:
    op = spec.operation(ref)
    resp = op.response
    return {"operation": tool.operation, "operation_id": ref.operation_id,
            "method": ref.method, "path": ref.path, "inputs": _inputs(spec, op),
            "body_media_type": op.body.media_type if op.body else None,
            "response_media_type": resp.media_type if resp else None,
            "fields": _fields(spec, op, tool)}


def find_operation(spec: OpenAPIDocument, key: str) -> OperationRef | None:
    found = spec.find(key)
    return found if isinstance(found, OperationRef) else None


# -- the lock file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One API of a curation as lock and diff read it: its part of the curation (a
    `ScopedDocument` under `apis.<name>` in a multi-API one), its spec and how to show it."""

    api: str  # "" in a single-API curation
    doc: YAMLDocument
    curation: Curation
    spec_path: Path
    display: str


def read_units(config: Path) -> tuple[list[Unit], bool]:
    """Each API of the curation, and whether it is a multi-API one.

    Raises:
        LoadError: the curation cannot be read.
    """
    doc = read_yaml(config)
    parsed = parse_any_curation(doc)
    if isinstance(parsed, MultiCuration):
        return [Unit(api, scoped, curation, *locate_spec(config, curation.spec))
                for api, _, scoped, curation in api_sections(doc, parsed)], True
    return [Unit("", doc, parsed, *locate_spec(config, parsed.spec))], False


@dataclass(frozen=True)
class LockResult:
    path: Path
    tools: int
    files: int
    digest: str
    apis: int = 0  # in a multi-API curation


def write_lock(config: Path, output: Path | None = None) -> LockResult:
    """Record each API's spec digest and the shape of each of its curated operations.

    Raises:
        LoadError: the curation or a spec cannot be read, or names an operation, or a
            response field, the spec does not have.
        OSError: the lock cannot be written.
    """
    units, multi = read_units(config)
    target = output or lock_path(config)
    bodies: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for unit in units:
        try:
            bodies[unit.api] = _lock_body(config, unit, target.parent)
        except LoadError as exc:
            if not multi:
                raise
            problems += [replace(p, file=p.file or exc.file) for p in exc.problems]
    if problems:
        raise CurationError(str(config), problems)
    head = {"format": FORMAT, "version": MULTI_VERSION if multi else FORMAT_VERSION,
            "facade": __version__}
    lock = {**head, "apis": bodies} if multi else {**head, **bodies[""]}
    write_atomically(target, json.dumps(lock, indent=2, ensure_ascii=False) + "\n")
    specs = [body["spec"] for body in bodies.values()]
    return LockResult(
        target, sum(len(v) for body in bodies.values() for k, v in body.items() if k != "spec"),
        sum(len(s["files"]) + len(s["overlays"]) for s in specs),
        specs[0]["digest"] if not multi else _digest({api: body["spec"]["digest"] for api, body
                                                      in bodies.items()}),
        len(bodies) if multi else 0)


def _lock_body(config: Path, unit: Unit, base: Path) -> dict[str, Any]:
    """One API's part of the lock: its spec's digests and its operations' shapes."""
    doc, curation = unit.doc, unit.curation
    spec = open_spec(config, doc, curation, unit.spec_path, unit.display)
    shapes: dict[str, dict[str, Shape]] = {}
    problems: list[Problem] = []
    for (section, name), tool in curated(curation).items():
        at: tuple[PathPart, ...] = (section, name, "operation")
        ref = find_operation(spec, tool.operation)
        if ref is None:
            problems.append(doc.problem(at, f"operation {tool.operation!r} is not (or not "
                                        f"uniquely) in {unit.display}",
                                        hint="run `facade check`"))
            continue
        try:
            shape = shape_of(spec, ref, tool)
        except SpecError as exc:
            problems += [doc.problem(at, f"{exc.file}: {p.message}") for p in exc.problems]
            continue
        for field in shape["fields"]:
            if field["type"] is None:
                problems.append(doc.problem(field_at(section, name, tool, field["path"]),
                                            f"{field['path']!r} is not in the response schema",
                                            hint="run `facade check`"))
        shapes.setdefault(section, {})[name] = shape
    if problems:
        raise CurationError(doc.file, problems)
    files = digests(spec_files(unit.spec_path), base)
    overlays = overlay_digests(config, curation, base) or {}
    return {"spec": {"file": _relative(unit.spec_path, base), "digest": _digest(files, overlays),
                     "files": files, "overlays": overlays}, **shapes}


def read_lock(path: Path) -> dict[str, Any]:
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DriftError(f"{path}: no lock file; run `facade lock` first") from None
    except (OSError, ValueError) as exc:
        raise DriftError(f"{path}: cannot read the lock ({exc}); run `facade lock` "
                         "again") from None
    if not isinstance(lock, dict) or lock.get("format") != FORMAT or not (
            lock.get("version") == FORMAT_VERSION and isinstance(lock.get("spec"), dict) or
            lock.get("version") == MULTI_VERSION and isinstance(lock.get("apis"), dict) and
            all(isinstance(a, dict) and isinstance(a.get("spec"), dict)
                for a in lock["apis"].values())):
        raise DriftError(f"{path}: not a version {FORMAT_VERSION} or {MULTI_VERSION} facade "
                         "lock; run `facade lock` again")
    return lock


def lock_sections(lock: dict[str, Any], path: Path, multi: bool) -> dict[str, dict[str, Any]]:
    """Each API's part of a lock `read_lock` accepted, by API name (`""`: single-API).

    Raises:
        DriftError: the lock was written for the other kind of curation.
    """
    if (lock["version"] == MULTI_VERSION) != multi:
        kind = "a multi-API" if not multi else "a single-API"
        raise DriftError(f"{path}: the lock was written for {kind} curation; run `facade "
                         "lock` again")
    return dict(lock["apis"]) if multi else {"": lock}


def field_at(section: str, name: str, tool: ToolCuration, path: str) -> tuple[PathPart, ...]:
    for key in ("include", "redact"):
        entries = getattr(tool.response, key) or []
        if path in entries:
            return (section, name, "response", key, entries.index(path))
    return (section, name, "response")
