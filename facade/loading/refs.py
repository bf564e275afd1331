"""Read OpenAPI files and resolve `$ref`s within and across them, lazily.

Only what a curated operation reaches is ever resolved: a 4 MB spec with one curated
operation costs one parse plus a few dozen pointer walks. Referenced files are read on
first use and cached. Remote (`http://…`) references are refused: a façade must not
fetch anything at start-up that its operator did not put on disk.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from facade.errors import SpecError

__all__ = ["MAX_SPEC_BYTES", "RefResolver", "read_document"]

MAX_SPEC_BYTES = 64 * 1024 * 1024
_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YAMLLoader(_BaseLoader):  # type: ignore[misc]
    """The safe loader, but a YAML timestamp stays the string it was written as.

    Specs write unquoted dates in examples and defaults (`example: 2020-07-21T20:19:00Z`);
    as `datetime`s they would make tool schemas impossible to serialize as JSON, and
    OpenAPI data is JSON data.
    """


_YAMLLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node))
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def read_document(path: Path, display: str | None = None) -> Any:
    """Parse one JSON or YAML file, raising `SpecError` with the file name on failure."""
    file = display or str(path)
    try:
        if path.is_dir():
            raise SpecError(file, "is a directory, not an OpenAPI document", code="spec/unreadable")
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            limit = MAX_SPEC_BYTES
            shown = f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit:,}-byte"
            raise SpecError(file, f"the document is {size:,} bytes, over the {shown} limit",
                            code="spec/too-large")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(file, "file not found", hint="check `spec:` in curation.yaml",
                        code="spec/not-found") from None
    except OSError as exc:
        raise SpecError(file, f"cannot read the file: {exc.strerror}",
                        code="spec/unreadable") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(file, "the document is not valid UTF-8",
                        code="spec/unreadable") from None
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if path.suffix.lower() == ".json":
                raise SpecError(file, f"invalid JSON: {exc.msg}", line=exc.lineno,
                                column=exc.colno, code="spec/syntax") from None
    try:
        return yaml.load(text, Loader=_YAMLLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SpecError(file, f"invalid YAML: {exc.problem}", line=line, column=column,
                        code="spec/syntax") from None
    except yaml.YAMLError as exc:
        raise SpecError(file, f"invalid YAML: {exc}", code="spec/syntax") from None


def pointer_tokens(pointer: str) -> list[str]:
    """The reference tokens of a JSON pointer (`/a~1b/0` → `["a/b", "0"]`), unescaped and
    percent-decoded as a URI fragment is."""
    return [unquote(t).replace("~1", "/").replace("~0", "~") for t in pointer.split("/") if t]


def walk_pointer(doc: Any, tokens: list[str]) -> Any:
    """The value at `tokens` in `doc`.

    Raises:
        KeyError: a token names nothing there.
    """
    for token in tokens:
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list) and token.isdigit() and int(token) < len(doc):
            doc = doc[int(token)]
        else:
            raise KeyError(token)
    return doc


class RefResolver:
    """Resolves `$ref` strings relative to the file they appear in."""

    def __init__(self, root_file: Path, root: Any, *, display: str,
                 documents: dict[Path, Any] | None = None) -> None:
        self.root_file = root_file.resolve()
        self.display = display
        # `documents`: other files already read (and converted, for Swagger 2.0).
        self._docs: dict[Path, Any] = {self.root_file: root, **(documents or {})}
        # Stripe-sized specs resolve the same few hundred refs tens of thousands of times.
        self._resolved: dict[tuple[str, Path], tuple[Any, Path, str]] = {}

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file read so far, the root document first."""
        return tuple(self._docs)

    def name(self, file: Path) -> str:
        """How to show a file in messages: the root as the user named it, others relative."""
        if file == self.root_file:
            return self.display
        try:
            return str(file.relative_to(self.root_file.parent))
        except ValueError:
            return str(file)

    def document(self, file: Path) -> Any:
        if file not in self._docs:
            self._docs[file] = read_document(file, self.name(file))
        return self._docs[file]

    def resolve(self, ref: str, base: Path) -> tuple[Any, Path, str]:
        """Follow `ref` (and any chain of refs it lands on) to a value.

        Returns the value, the file it lives in (the base for refs inside it), and a
        canonical key that identifies the target, for cycle detection.
        """
        cached = self._resolved.get((ref, base))
        if cached is not None:
            return cached
        start, seen = (ref, base), set[str]()
        while True:
            value, base, key = self._resolve_once(ref, base)
            if not (isinstance(value, dict) and isinstance(value.get("$ref"), str)):
                self._resolved[start] = value, base, key
                return value, base, key
            if key in seen:
                raise SpecError(self.name(base), f"$ref cycle through {ref!r}", pointer=key,
                                code="spec/ref")
            seen.add(key)
            ref = value["$ref"]

    def _resolve_once(self, ref: str, base: Path) -> tuple[Any, Path, str]:
        where, _, pointer = ref.partition("#")
        if _REMOTE.match(where):
            raise SpecError(self.name(base), f"remote $ref {ref!r} is not allowed",
                            hint="download the referenced file next to the spec and "
                            "refer to it by a relative path", code="spec/ref")
        target = (base.parent / unquote(where)).resolve() if where else base
        if target not in self._docs and not target.is_file():
            what = "is a directory" if target.is_dir() else "does not exist"
            raise SpecError(self.name(base), f"$ref {ref!r} points at a file that {what}: "
                            f"{self.name(target)}", hint="refs are relative to the file "
                            "that holds them", code="spec/ref")
        try:
            node = walk_pointer(self.document(target), pointer_tokens(pointer))
        except KeyError:
            raise SpecError(self.name(base), f"unresolvable $ref {ref!r}",
                            pointer=f"#{pointer}", code="spec/ref") from None
        return node, target, f"{target}#{pointer}"
