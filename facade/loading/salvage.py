"""Load time: a curation whose shape is wrong is still checked against its spec.

pydantic reports every shape problem at once (`facade.loading.curation`), but a curation
that fails its model leaves the loader nothing to cross-check, so one misspelt key in one
tool would hide an unknown operation in another. `salvage` repairs a copy of the data until
it validates:

- a node pydantic refused is removed: the smallest one that holds the problem (a misspelt
  key, a value of the wrong type, a parameter whose settings exclude each other), or the
  entry that lacks a required key; a list goes as a whole, so the entries of the others
  keep their indices;
- a key refused as a name (`Get-Item`) is renamed to a placeholder, so its entry is still
  checked; a missing `backend` or `version` gets a neutral stand-in.

`cross_check` runs the loader on what is left and returns its errors in the curation's
terms: original names in paths and messages, positions as written, nothing under a removed
node (that was reported as a shape problem already), no prompt naming a removed tool.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from facade.errors import LoadError, PathPart, Problem
from facade.loading.curation import API_KEYS, Curation, MultiCuration
from facade.loading.multi import compile_multi
from facade.loading.single import SingleLoader
from facade.loading.yamlsource import YAMLDocument

__all__ = ["Salvaged", "cross_check", "salvage"]

Path_ = tuple[PathPart, ...]

# Stand-ins for required sections that are missing or unusable: valid, and silent.
_STAND_INS: dict[str, Any] = {"backend": {"base_url": "http://127.0.0.1"}, "version": 1}
_MAX_ROUNDS = 100  # each round removes or renames at least one node


@dataclass
class Salvaged:
    """What of a curation validates, and how it differs from the file."""

    curation: Curation | MultiCuration | None  # None until what is left validates
    doc: YAMLDocument  # positions also under the placeholder names
    removed: list[Path_] = field(default_factory=list)  # in the file's names
    renames: dict[tuple[Path_, str], str] = field(default_factory=dict)  # → placeholder

    def original(self, path: Path_) -> Path_:
        names = {placeholder: key for (_, key), placeholder in self.renames.items()}
        return tuple(names.get(p, p) if isinstance(p, str) else p for p in path)

    def restore(self, problem: Problem) -> Problem:
        """`problem` as if found in the file: original names in its path and text."""
        message, hint = problem.message, problem.hint
        for (_, key), placeholder in self.renames.items():
            message = message.replace(placeholder, key)
            hint = hint.replace(placeholder, key) if hint else hint
        return dataclasses.replace(problem, path=self.original(problem.path),
                                   message=message, hint=hint)


def salvage(doc: YAMLDocument) -> Salvaged | None:
    """The largest valid part of the curation in `doc`, or None when nothing is left to
    check (the top level is not a mapping, `spec` or `tools` is unusable…)."""
    if not isinstance(doc.data, dict):
        return None
    root: type[BaseModel] = Curation
    if "apis" in doc.data:
        if any(key in doc.data for key in API_KEYS):
            return None
        root = MultiCuration
    data = copy.deepcopy(doc.data)
    found = Salvaged(None, doc)
    taken = _all_keys(data)
    for _ in range(_MAX_ROUNDS):
        try:
            curation = root.model_validate(data)
        except ValidationError as exc:
            if not _repair(data, exc.errors(), found, taken):
                return None
            continue
        assert isinstance(curation, (Curation, MultiCuration))
        found.curation = curation
        found.doc = _with_placeholders(doc, found)
        return found
    return None


def cross_check(doc: YAMLDocument, shape: list[Problem], config: Path,
                environ: dict[str, str]) -> list[Problem]:
    """The loader's errors about the parts of a curation that have the right shape, beside
    the `shape` problems already found."""
    found = salvage(doc)
    if found is None or found.curation is None:
        return []
    try:
        if isinstance(found.curation, MultiCuration):
            compile_multi(found.doc, found.curation, config, environ)
        else:
            SingleLoader(found.doc, found.curation, config, environ).run()
    except LoadError as exc:  # a `SpecError` is about the spec file: it keeps its name
        problems = tuple(p if p.file or exc.file == doc.file else
                         dataclasses.replace(p, file=exc.file) for p in exc.problems)
    else:
        return []
    seen = {(p.path, p.message) for p in shape}
    # Tools a prompt may name that the loader did not see under their own name.
    absent = {str(path[-1]) for path in found.removed if path[-2:-1] == ("tools",)} | \
        {key for (container, key) in found.renames if container[-1:] == ("tools",)}
    out = []
    for problem in map(found.restore, problems):
        if problem.severity != "error" or (problem.path, problem.message) in seen:
            continue
        if any(problem.path[:len(r)] == r for r in found.removed):
            continue
        if problem.path[:1] == ("prompts",) and _names_absent(problem, absent):
            continue
        out.append(problem)
    return out


def _names_absent(problem: Problem, tools: set[str]) -> bool:
    """Whether a prompt's problem says it names an unknown tool that is one of `tools`
    (as written, or with its API's namespace)."""
    named, unknown, _ = problem.message.partition(" is not a curated tool")
    name = named.strip("'\"")
    return bool(unknown) and any(name == t or name.endswith(f"_{t}") for t in tools)


def _repair(data: dict[str, Any], errors: list[Any], found: Salvaged, taken: set[str]
            ) -> bool:
    """Remove or rename what each error is about; False when the top level itself fails,
    or nothing could be changed."""
    removals: list[Path_] = []
    changed = False
    renames: list[Path_] = []
    for err in errors:
        loc: Path_ = tuple(err["loc"])
        if loc[-1:] == ("[key]",):
            renames.append(loc[:-1])
            continue
        at = _existing(data, loc)
        if err["type"] == "missing" and at == loc[:-1]:
            stand_in = _STAND_INS.get(str(loc[-1]))
            parent = _node(data, at)
            if stand_in is not None and isinstance(parent, dict):
                parent[loc[-1]] = copy.deepcopy(stand_in)
                changed = True
                continue
        while at and isinstance(at[-1], int):
            at = at[:-1]  # a list goes as a whole: the other entries keep their indices
        if not at:
            return False
        removals.append(at)
    for at in sorted(set(removals), key=len):
        parent = _node(data, at[:-1])
        if isinstance(parent, dict) and at[-1] in parent:  # not under an earlier removal
            del parent[at[-1]]
            found.removed.append(found.original(at))
            changed = True
    for at in renames:
        parent = _node(data, at[:-1])
        if isinstance(parent, dict) and at[-1] in parent:
            placeholder = _placeholder(taken)
            found.renames[(found.original(at[:-1]), str(at[-1]))] = placeholder
            items = [(placeholder if k == at[-1] else k, v) for k, v in parent.items()]
            parent.clear()
            parent.update(items)
            changed = True
    return changed


def _existing(data: Any, loc: Path_) -> Path_:
    """The longest prefix of `loc` that names a node in `data` (pydantic's locations also
    name union members and validators, which are not in the data)."""
    node, depth = data, 0
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
        depth += 1
    return loc[:depth]


def _node(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _all_keys(data: Any) -> set[str]:
    if isinstance(data, dict):
        return {str(k) for k in data} | {k for v in data.values() for k in _all_keys(v)}
    if isinstance(data, list):
        return {k for v in data for k in _all_keys(v)}
    return set()


def _placeholder(taken: set[str]) -> str:
    """A name that every name pattern accepts and the file does not use."""
    n = len(taken)
    while f"renamed_{n}" in taken:
        n += 1
    taken.add(f"renamed_{n}")
    return f"renamed_{n}"


def _with_placeholders(doc: YAMLDocument, found: Salvaged) -> YAMLDocument:
    """`doc` whose positions are also found under the placeholder names."""
    def renamed(path: Path_) -> Path_:
        out: list[PathPart] = []
        for i, part in enumerate(path):
            out.append(found.renames.get((path[:i], str(part)), part))
        return tuple(out)

    values = {**doc.values, **{renamed(p): pos for p, pos in doc.values.items()}}
    keys = {**doc.keys, **{renamed(p): pos for p, pos in doc.keys.items()}}
    return YAMLDocument(doc.file, doc.data, values, keys)
