"""OpenAPI Overlay 1.0 documents: fixes to a spec you don't own, applied as it is loaded.

A curation lists overlays (`overlays: [fixes.yaml]`, relative to the curation file). Each
is read with the position of every node (`facade.loading.yamlsource`) and checked whole
before anything is applied, so a malformed overlay is every problem at once, each at its
line:col. Then, in the order listed, each overlay's actions are applied in order to the
spec's root document as parsed:

- `target` is an RFC 9535 JSONPath (evaluated by `jsonpath-rfc9535`); it addresses the
  root document as written. `$ref`s are not followed: a target cannot reach into another
  file of a multi-file spec, and patching a `$ref` object patches the reference, not what
  it points at. A Swagger 2.0 document is patched before its conversion to 3.0, so
  targets say `definitions`, not `components.schemas`.
- `update` is merged into each object matched: objects recursively, arrays appended to,
  anything else replaced. Matched arrays get `update` appended as one more entry.
- `remove: true` takes each matched node out of the object or array holding it.

A target that matches nothing is an error at that target, with a hint: an overlay that
silently stopped applying (the spec's owner fixed or moved the node) must not go
unnoticed.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facade.errors import CurationError, PathPart, Problem, did_you_mean
from facade.loading.yamlsource import YAMLDocument, read_yaml

__all__ = ["Action", "Overlay", "apply_overlays", "read_overlay", "read_overlays",
           "relative_hint"]

if TYPE_CHECKING:
    from jsonpath_rfc9535 import JSONPathError, JSONPathQuery

VERSION = re.compile(r"^1\.0\.\d+$")
_TOP_KEYS = ("overlay", "info", "extends", "actions")
_ACTION_KEYS = ("target", "description", "update", "remove")
_AT_OFFSET = re.compile(r", line \d+, column (\d+)$")


@dataclass(frozen=True)
class Action:
    """One action of an overlay, its target compiled."""

    index: int  # position in `actions`, for messages
    target: str
    query: JSONPathQuery
    update: Any
    remove: bool


@dataclass(frozen=True)
class Overlay:
    """A checked overlay document; `doc` keeps its positions for problems found applying it."""

    path: Path  # resolved
    display: str
    doc: YAMLDocument
    actions: tuple[Action, ...]

    def problem(self, path: tuple[PathPart, ...], message: str, *, hint: str | None = None
                ) -> Problem:
        return replace(self.doc.problem(path, message, hint=hint), file=self.display)


def read_overlays(doc: YAMLDocument, names: Sequence[str], config: Path
                  ) -> tuple[list[Overlay], list[Problem]]:
    """The overlays a curation lists (at `overlays` in `doc`), and every problem found in
    the list or in the files."""
    overlays: list[Overlay] = []
    problems: list[Problem] = []
    for i, name in enumerate(names):
        path = config.parent / name
        display = str(path) if Path(name).is_absolute() else os.path.relpath(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "not found"
            problems.append(doc.problem(
                ("overlays", i), f"overlay file {name!r} {what}",
                hint=relative_hint("overlays", name, display, "are")))
            continue
        try:
            overlays.append(read_overlay(path, display))
        except CurationError as exc:
            problems += [p if p.file else replace(p, file=exc.file) for p in exc.problems]
    return overlays, problems


def read_overlay(path: Path, display: str | None = None) -> Overlay:
    """Read and check one overlay document.

    Raises:
        CurationError: it is not valid YAML or not a valid Overlay 1.0 document (every
            problem, each with its line:col in the overlay).
    """
    display = display or str(path)
    doc = read_yaml(path, display=display, dates_as_text=True)
    problems: list[Problem] = []
    actions = _check(doc, problems)
    if problems:
        raise CurationError(display, [replace(p, file=display) for p in problems])
    return Overlay(path.resolve(), display, doc, tuple(actions))


def _check(doc: YAMLDocument, problems: list[Problem]) -> list[Action]:
    data = doc.data

    def add(path: tuple[PathPart, ...], message: str, hint: str | None = None,
            key: bool = False) -> None:
        problems.append(doc.problem(path, message, hint=hint, key=key))

    if not isinstance(data, dict):
        add((), "an overlay must be a mapping with `overlay`, `info` and `actions`")
        return []
    _unknown_keys(doc, (), data, _TOP_KEYS, problems)
    if "overlay" not in data:
        add((), "missing required key 'overlay'", "start the file with `overlay: 1.0.0`")
    elif not isinstance(data["overlay"], str) or not VERSION.match(data["overlay"]):
        add(("overlay",), f"overlay version {data['overlay']!r} is not supported",
            "facade reads Overlay 1.0 documents: `overlay: 1.0.0`")
    info = data.get("info")
    if "info" not in data:
        add((), "missing required key 'info'", "add `info: {title: …, version: …}`")
    elif not isinstance(info, dict):
        add(("info",), "`info` must be a mapping with `title` and `version`")
    else:
        for field in ("title", "version"):
            if field not in info:
                add(("info",), f"missing required key 'info.{field}'")
            elif not isinstance(info[field], str):
                add(("info", field), f"`info.{field}` must be a string", 'quote it, e.g. "1.0"')
    if "extends" in data and not isinstance(data["extends"], str):
        add(("extends",), "`extends` must be a string (the URI of the spec)")
    raw = data.get("actions")
    if "actions" not in data:
        add((), "missing required key 'actions'", "an overlay needs at least one action")
        return []
    if not isinstance(raw, list) or not raw:
        add(("actions",), "`actions` must be a non-empty list",
            "an overlay needs at least one action")
        return []
    return [a for i, entry in enumerate(raw) if (a := _action(doc, i, entry, problems))]


def _unknown_keys(doc: YAMLDocument, at: tuple[PathPart, ...], data: dict[str, Any],
                  known: tuple[str, ...], problems: list[Problem]) -> None:
    for key in data:
        if key not in known and not key.startswith("x-"):
            hint = did_you_mean(key, known) or f"expected {', '.join(known)} or x- extensions"
            problems.append(doc.problem((*at, key), f"unknown key {key!r}", hint=hint, key=True))


def _action(doc: YAMLDocument, i: int, raw: Any, problems: list[Problem]) -> Action | None:
    at: tuple[PathPart, ...] = ("actions", i)
    if not isinstance(raw, dict):
        problems.append(doc.problem(at, "an action must be a mapping with `target` and "
                                    "`update` or `remove`"))
        return None
    _unknown_keys(doc, at, raw, _ACTION_KEYS, problems)
    query = None
    target = raw.get("target")
    if "target" not in raw:
        problems.append(doc.problem(at, "the action has no `target`",
                                    hint="a JSONPath, e.g. $.components.schemas.User"))
    elif not isinstance(target, str):
        problems.append(doc.problem((*at, "target"), "`target` must be a JSONPath string"))
    else:
        # Imported here: ~100 ms that a curation without overlays never pays at start-up.
        from jsonpath_rfc9535 import JSONPathError
        from jsonpath_rfc9535 import compile as compile_jsonpath

        try:
            query = compile_jsonpath(target)
        except JSONPathError as exc:
            problems.append(doc.problem((*at, "target"), f"invalid JSONPath {target!r}: "
                                        f"{_reason(exc)}", hint="targets are RFC 9535 "
                                        "JSONPath, e.g. $.paths['/users/{id}'].get"))
    if "description" in raw and not isinstance(raw["description"], str):
        problems.append(doc.problem((*at, "description"), "`description` must be a string"))
    remove = raw.get("remove", False)
    if not isinstance(remove, bool):
        problems.append(doc.problem((*at, "remove"), "`remove` must be true or false"))
    elif "update" not in raw and not remove:
        problems.append(doc.problem(at, "the action has neither `update` nor `remove: true`",
                                    hint="add `update: {…}` to merge into the target, or "
                                    "`remove: true` to delete it"))
        return None
    if query is None or not isinstance(remove, bool) or not isinstance(target, str):
        return None
    return Action(i, target, query, raw.get("update"), remove)


def _reason(exc: JSONPathError) -> str:
    """The library's message, its `line 1, column N` said as an offset in the target."""
    return _AT_OFFSET.sub(r" (at offset \1)", str(exc))


# -- applying -----------------------------------------------------------------------------


def apply_overlays(document: Any, overlays: Sequence[Overlay]) -> list[Problem]:
    """Apply every action of `overlays`, in order, to `document` (changed in place).
    Returns the problems (targets matching nothing, updates that cannot merge); every
    action that can be applied is applied."""
    problems: list[Problem] = []
    for overlay in overlays:
        for action in overlay.actions:
            problems += _apply(document, overlay, action)
    return problems


def _apply(document: Any, overlay: Overlay, action: Action) -> list[Problem]:
    at: tuple[PathPart, ...] = ("actions", action.index)
    nodes = list(action.query.finditer(document))
    if not nodes:
        return [overlay.problem((*at, "target"), f"target {action.target!r} matches "
                                "nothing in the spec", hint=_nothing_hint(document, action))]
    if action.remove:
        if any(not n.location for n in nodes):
            return [overlay.problem((*at, "target"), "`remove` cannot delete the whole "
                                    "document", hint="target the nodes to delete")]
        _remove(document, [n.location for n in nodes])
        return []
    for node in nodes:
        value = node.value
        if isinstance(value, list):
            value.append(copy.deepcopy(action.update))
        elif not isinstance(value, dict):
            kind = "null" if value is None else type(value).__name__
            return [overlay.problem((*at, "target"), f"target selects a {kind} at "
                                    f"{node.path()}; `update` needs an object or an array",
                                    hint="target the object that holds it and update that "
                                    "key")]
        elif not isinstance(action.update, dict):
            return [overlay.problem((*at, "update"), "`update` must be a mapping to merge "
                                    f"into the object at {node.path()}")]
        else:
            merge(value, action.update)
    return []


def merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    """Merge `update` into `target`: objects recursively, arrays appended to, anything
    else replaced (Overlay 1.0's `update`)."""
    for key, value in update.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            current.extend(copy.deepcopy(value))
        else:
            target[key] = copy.deepcopy(value)


def _remove(document: Any, locations: list[tuple[str | int, ...]]) -> None:
    # Every parent is found before anything is removed: removing list items by index
    # would otherwise shift the indexes of the next matches.
    members: list[tuple[dict[str, Any], str]] = []
    items: dict[int, tuple[list[Any], set[int]]] = {}
    for location in locations:
        parent = document
        for part in location[:-1]:
            parent = parent[part]
        last = location[-1]
        if isinstance(parent, list) and isinstance(last, int):
            items.setdefault(id(parent), (parent, set()))[1].add(last)
        elif isinstance(parent, dict):
            members.append((parent, str(last)))
    for mapping, key in members:
        mapping.pop(key, None)
    for array, indexes in items.values():
        for index in sorted(indexes, reverse=True):
            del array[index]


def _nothing_hint(document: Any, action: Action) -> str:
    swagger2 = isinstance(document, dict) and "swagger" in document
    if swagger2 and "components" in action.target:
        return ("this is a Swagger 2.0 document, patched before its conversion: say "
                "`definitions`, `parameters` and `responses`, not `components`")
    return ("targets address the spec's root document as written; `$ref`s are not "
            "followed (was the node moved, renamed, or fixed by the spec's owner?)")


def relative_hint(key: str, written: str, display: str, verb: str = "is") -> str | None:
    """Where a relative path of the curation was looked for; nothing for an absolute one."""
    if Path(written).is_absolute():
        return None
    looked = f": facade looked for {display}" if display != written else ""
    return f"`{key}` {verb} relative to the curation file{looked}"
