"""Read curation YAML while keeping where every key and value stood.

PyYAML's `compose()` gives a node tree with marks; we build plain Python values from it
ourselves so that we can (a) refuse duplicate keys instead of silently keeping the last,
(b) record the line and column of every key and value by path, and (c) bound alias
expansion, which a "billion laughs" document would otherwise blow up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from facade.errors import CurationError, PathPart, Problem

__all__ = ["YAMLDocument", "read_yaml"]

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = yaml.constructor.SafeConstructor()

# A generous bound: a real curation has a few hundred nodes. Alias bombs expand
# exponentially and hit it after a handful of lines.
MAX_NODES = 200_000
MAX_BYTES = 4 * 1024 * 1024

Position = tuple[int, int]
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


@dataclass
class YAMLDocument:
    """Plain data plus the positions of its keys and values, by path."""

    file: str
    data: Any
    values: dict[tuple[PathPart, ...], Position] = field(default_factory=dict)
    keys: dict[tuple[PathPart, ...], Position] = field(default_factory=dict)

    def locate(self, path: tuple[PathPart, ...], *, key: bool = False) -> Position | None:
        """Where `path` stands; the nearest enclosing node when `path` itself is absent."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            found = table.get(prefix) or self.values.get(prefix)
            if found:
                return found
        return None

    def problem(
        self, path: tuple[PathPart, ...], message: str, *, hint: str | None = None,
        key: bool = False, severity: str = "error", code: str | None = None,
    ) -> Problem:
        pos = self.locate(path, key=key)
        line, col = pos if pos else (None, None)
        return Problem(path, message, line, col, hint, severity=severity, code=code)


class _Builder:
    def __init__(self, doc: YAMLDocument, dates_as_text: bool = False) -> None:
        self.doc = doc
        self.dates_as_text = dates_as_text
        self.count = 0
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, path: tuple[PathPart, ...]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge(node)
        self.doc.values.setdefault(path, _pos(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if self.dates_as_text and node.tag == _TIMESTAMP:
            return node.value
        return _SCALARS.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: tuple[PathPart, ...]) -> dict[Any, Any]:
        _SCALARS.flatten_mapping(node)  # applies `<<` merge keys
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.build(key_node, (*path, "<key>"))
            if not isinstance(key, (str, int, bool, float)) and key is not None:
                self.problems.append(_at(key_node, path, "a mapping key must be a plain scalar",
                                         code="yaml/key"))
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                first = self.doc.keys[(*path, key)]
                self.problems.append(_at(
                    key_node, (*path, key), f"duplicate key {key!r}",
                    hint=f"first defined at line {first[0]}; remove one of them",
                    code="yaml/duplicate-key"))
                continue
            self.doc.keys[(*path, key)] = _pos(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out


class _TooLarge(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def _pos(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _at(node: yaml.Node, path: tuple[PathPart, ...], message: str, hint: str | None = None,
        *, code: str) -> Problem:
    line, col = _pos(node)
    return Problem(path, message, line, col, hint, code=code)


def _fail(file: str, message: str, hint: str | None = None,
          pos: Position | None = None, *, code: str = "yaml/syntax") -> CurationError:
    line, col = pos if pos else (None, None)
    return CurationError(file, [Problem((), message, line, col, hint, code=code)])


def _read_text(path: Path, file: str) -> str:
    try:
        if path.is_dir():
            raise _fail(file, "is a directory, not a YAML file", code="file/unreadable")
        if path.stat().st_size > MAX_BYTES:
            raise _fail(file, f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB", code="file/too-large")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _fail(file, "file not found", "pass --config PATH or set FACADE_CONFIG", code="file/not-found") from None
    except PermissionError:
        raise _fail(file, "permission denied while reading the file", code="file/unreadable") from None
    except OSError as exc:
        raise _fail(file, f"cannot read the file: {exc.strerror}", code="file/unreadable") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(file, "the file is not valid UTF-8", "save it as UTF-8",
                    (line, col), code="file/encoding") from None


def read_yaml(path: str | Path, *, display: str | None = None,
              dates_as_text: bool = False) -> YAMLDocument:
    """Read one YAML document, raising `CurationError` with file:line:col for any problem.

    With `dates_as_text`, an unquoted date stays the string it was written as, as in an
    OpenAPI document (whose data is JSON data): for overlays, which carry spec fragments.
    """
    path = Path(path)
    file = display or str(path)
    text = _read_text(path, file)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = (mark.line + 1, mark.column + 1) if mark else None
        problem = exc.problem or str(exc)
        lines = text.splitlines()
        bad_line = lines[mark.line] if mark and mark.line < len(lines) else ""
        hint = None
        if "\t" in bad_line:
            hint = "YAML indentation must use spaces, not tabs"
        elif "[]" in bad_line:
            hint = 'quote paths with [] inside a [...] list, e.g. ["items[].id"]'

        raise _fail(file, f"YAML syntax error: {problem}", hint, pos) from None
    except yaml.YAMLError as exc:
        raise _fail(file, f"YAML error: {exc}") from None
    if root is None:
        raise _fail(file, "the file is empty", "start from `facade init --spec PATH`", code="yaml/empty")
    doc = YAMLDocument(file=file, data=None)
    builder = _Builder(doc, dates_as_text)
    try:
        doc.data = builder.build(root, ())
    except _TooLarge as exc:
        raise _fail(file, f"the document expands to more than {MAX_NODES} nodes",
                    "aliases (*name) that multiply are not allowed", _pos(exc.node),
                    code="yaml/too-large") from None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        pos = (mark.line + 1, mark.column + 1) if mark else None
        raise _fail(file, f"YAML error: {exc.problem}", None, pos) from None
    if builder.problems:
        raise CurationError(file, builder.problems)
    return doc
