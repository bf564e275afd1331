"""The exceptions facade raises, and the `Problem` record load-time errors carry.

```text
FacadeError                 base; never raised directly
└── LoadError               load time only: the CLI prints it and exits 1; never reaches a client
    ├── SpecError           the OpenAPI document is unreadable, unsupported or inconsistent
    └── CurationError       curation.yaml syntax, shape, or cross-reference problems
```

At call time failures are `fastmcp.exceptions.ToolError`s raised by `facade.call.upstream`,
with a message written for the model that called the tool.

Every load-time error is a list of `Problem`s, rendered gcc-style, one per line, so that
editors and CI annotate them: `curation.yaml:12:5: tools.get_item.params.id: unknown
parameter 'id' (did you mean 'itemId'?)`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CurationError",
    "FacadeError",
    "LoadError",
    "Problem",
    "SpecError",
    "did_you_mean",
]

PathPart = str | int


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, with where it is and how to fix it."""

    path: tuple[PathPart, ...]
    message: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    hint: str | None = None
    file: str | None = None  # overrides the error's file (e.g. a spec file named by curation)
    severity: str = "error"  # or "warning"
    # The kind of problem, stable across versions (`yaml/syntax`, `lint/description`): the
    # rule id of `facade check --format sarif`. Never part of the text; None where the
    # kind is the curation key the problem is about (see `facade.curate.reports`).
    code: str | None = None

    def format(self, file: str) -> str:
        """`file:line:col: [warning: ]key.path: message (hint)`."""
        where = self.file or file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        severity = f"{self.severity}: " if self.severity != "error" else ""
        return f"{where}: {severity}{self.text()}"

    def text(self) -> str:
        """What follows the location: `key.path: message (hint)`."""
        dotted = dotted_path(self.path)
        text = f"{dotted}: {self.message}" if dotted else self.message
        return f"{text} ({self.hint})" if self.hint else text


def dotted_path(path: Sequence[PathPart]) -> str:
    """`("tools", "get_item", "params", 0)` → `tools.get_item.params[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A click-style suggestion for a misspelt name, or None when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    if not matches:
        return None
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"


class FacadeError(Exception):
    """Base class of every error facade raises itself."""


class LoadError(FacadeError):
    """Loading the spec or the curation failed; `problems` says every reason at once."""

    def __init__(self, file: str | Path, problems: Sequence[Problem]) -> None:
        self.file = str(file)
        self.problems = tuple(
            sorted(problems, key=lambda p: (p.file or "", p.line or 0, p.column or 0))
        )
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(p.format(self.file) for p in self.problems)


class SpecError(LoadError):
    """The OpenAPI document cannot be read, is not a supported version, or is inconsistent."""

    def __init__(
        self, file: str | Path, message: str, *, pointer: str = "", hint: str | None = None,
        line: int | None = None, column: int | None = None, code: str = "spec/invalid",
    ) -> None:
        self.pointer = pointer
        path: tuple[PathPart, ...] = (pointer,) if pointer else ()
        super().__init__(file, [Problem(path, message, line, column, hint, code=code)])


class CurationError(LoadError):
    """curation.yaml has syntax, shape or cross-reference problems."""
