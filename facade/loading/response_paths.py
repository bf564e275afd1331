"""Load time: a tool's `response.include` and `redact` paths, checked against its response
schema and against each other.

A path that is not in the schema gets a suggestion found in the whole schema, by leaf name
and by how close the whole path is (`data.idd` → `data[].id`), not only among the top-level
fields. A field that `include` names and a redaction removes is an error naming both: the
include says the agent sees it, the redaction makes sure it never does, and facade does not
guess which of the two is the mistake.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterator
from typing import Any

from facade.errors import PathPart, Problem, dotted_path
from facade.loading.curation import ToolCuration, section_of
from facade.loading.yamlsource import YAMLDocument
from facade.shaping import is_glob, parse_path, schema_has_path

__all__ = ["check_conflicts", "check_response_paths", "schema_paths", "suggest_path"]

_MAX_DEPTH = 8  # levels of nesting searched for suggestions
_MAX_PATHS = 5_000  # paths collected for suggestions, at most (a huge schema stops there)


def check_response_paths(doc: YAMLDocument, name: str, tool: ToolCuration,
                         schema: dict[str, Any], problems: list[Problem]) -> None:
    """Each `include` path, and each dotted `redact` path, must name a field of `schema`
    (where the schema can tell)."""
    rc = tool.response
    for key, paths in (("include", rc.include or []), ("redact", rc.redact)):
        defs = schema.get("$defs", {})
        for i, entry in enumerate(paths):
            if key == "redact" and is_glob(entry):
                continue
            if schema_has_path(schema, parse_path(entry), defs) is not False:
                continue
            top = _top_level_names(schema, defs)
            problems.append(doc.problem(
                (section_of(tool), name, "response", key, i),
                f"{entry!r} is not in the response schema",
                hint=suggest_path(entry, schema) or (
                    f"top-level fields: {', '.join(top)}" if top else None)))


def check_conflicts(doc: YAMLDocument, name: str, tool: ToolCuration, redact: list[str],
                    problems: list[Problem]) -> None:
    """An `include` path that a redaction removes (the curation's `redact` globs, or the
    tool's own `response.redact`) is an error naming the field and the redaction."""
    rc = tool.response
    at = (section_of(tool), name, "response")
    own: list[tuple[tuple[PathPart, ...], str]] = [
        ((*at, "redact", i), entry) for i, entry in enumerate(rc.redact)]
    every = [(("redact", i), entry) for i, entry in enumerate(redact)]
    for i, entry in enumerate(rc.include or []):
        parts = parse_path(entry)
        for where, rule in [*own, *every]:
            field = _removed_by(parts, rule)
            if field is None:
                continue
            ref = doc.problem(where, "")  # the redaction's place, in the file's terms
            line = f" (line {ref.line})" if ref.line else ""
            kind = "redact glob" if is_glob(rule) else "redact path"
            scope = "every tool" if where[0] == "redact" else "this tool"
            problems.append(doc.problem(
                (*at, "include", i), f"{entry!r} is included, but the {kind} {rule!r} at "
                f"{dotted_path(ref.path)}{line} removes {field!r} from the results of "
                f"{scope}",
                hint="remove it from `include`, or narrow the redaction: redaction wins, "
                "so the field never reaches the agent"))
            break


def _removed_by(parts: list[str], rule: str) -> str | None:
    """The field of an include path (`parts`) that a redact entry removes, if any: a glob
    matches any field along the path; a dotted path removes itself and what is under it."""
    lowered = [p.lower() for p in parts]
    if is_glob(rule):
        glob = rule.lower()
        return next((p for p, low in zip(parts, lowered) if fnmatch.fnmatchcase(low, glob)),
                    None)
    try:
        removed = [p.lower() for p in parse_path(rule)]
    except ValueError:  # reported where the entry is checked
        return None
    if lowered[:len(removed)] == removed:
        return ".".join(parts[:len(removed)])
    return None


def schema_paths(schema: dict[str, Any]) -> list[str]:
    """Every field path of a (bundled) response schema, written as `include` takes them
    (`data[].id`), breadth first, bounded in depth and number."""
    defs = schema.get("$defs") or {}
    found: list[str] = []
    for path in _walk(schema, "", defs, frozenset(), 0):
        found.append(path)
        if len(found) >= _MAX_PATHS:
            break
    return sorted(set(found), key=lambda p: (p.count("."), p))


def _walk(schema: Any, prefix: str, defs: dict[str, Any], refs: frozenset[str],
          depth: int) -> Iterator[str]:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix("#/$defs/")
        if name not in refs:  # a recursive schema is followed once
            yield from _walk(defs.get(name), prefix, defs, refs | {name}, depth)
        return
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(key) or []:
            yield from _walk(branch, prefix, defs, refs, depth)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from _walk(items, f"{prefix}[]" if prefix else prefix, defs, refs, depth)
    props = schema.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            path = f"{prefix}.{name}" if prefix else name
            yield path
            yield from _walk(sub, path, defs, refs, depth + 1)


def suggest_path(entry: str, schema: dict[str, Any]) -> str | None:
    """"did you mean …" for a path not in `schema`: paths whose last field is the one
    written, or close to it, then paths close as a whole; the closest whole paths first."""
    try:
        wanted = parse_path(entry)
    except ValueError:
        return None
    paths = schema_paths(schema)
    plain = {p: ".".join(parse_path(p)) for p in paths}
    written = ".".join(wanted)
    leaves = {p: parse_path(p)[-1] for p in paths}
    close_leaves = set(difflib.get_close_matches(wanted[-1], set(leaves.values()), n=5,
                                                 cutoff=0.6))

    def closeness(path: str) -> float:
        return difflib.SequenceMatcher(None, written, plain[path]).ratio()

    exact = [p for p in paths if leaves[p] == wanted[-1]]
    near = [p for p in paths if leaves[p] in close_leaves and p not in exact]
    whole = difflib.get_close_matches(written, list(plain.values()), n=3, cutoff=0.6)
    by_plain = {v: p for p, v in plain.items()}
    ranked = sorted(exact, key=closeness, reverse=True) + \
        sorted(near, key=closeness, reverse=True) + [by_plain[w] for w in whole]
    if not ranked:
        return None
    best = max(closeness(p) for p in ranked)
    chosen: list[str] = []
    for path in ranked:
        if path not in chosen and path != entry and closeness(path) >= best - 0.2:
            chosen.append(path)
    if not chosen:
        return None
    return "did you mean " + " or ".join(repr(p) for p in chosen[:3]) + "?"


def _top_level_names(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    while isinstance(schema, dict):
        if isinstance(schema.get("properties"), dict):
            return sorted(schema["properties"])
        if isinstance(schema.get("items"), dict):
            schema = schema["items"]
        elif isinstance(schema.get("$ref"), str):
            schema = defs.get(schema["$ref"].removeprefix("#/$defs/"), {})
        else:
            return []
    return []
