"""Swagger 2.0 conversion: what could not be converted, and the result of a conversion."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from facade.errors import LoadError, Problem, SpecError

__all__ = ["Conversion", "Issue"]


@dataclass(frozen=True)
class Issue:
    """Something in an operation that cannot be converted, and where it is."""

    file: str  # as shown in messages
    pointer: str  # JSON pointer into that file, in its 2.0 layout
    message: str
    hint: str | None = None
    lossy: bool = False  # the 3.0 document cannot express it: also a warning

    def problem(self, severity: str = "error") -> Problem:
        return Problem((self.pointer,), self.message, hint=self.hint, file=self.file,
                       severity=severity, code="spec/swagger2")


@dataclass
class Conversion:
    """The 3.0 document, the other files as converted, and issues by operation label."""

    document: dict[str, Any]
    files: dict[Path, Any]
    issues: dict[str, list[Issue]] = field(default_factory=dict)

    def error(self, label: str) -> SpecError | None:
        """Why operation `label` (`GET /pets`) cannot be used; None when it can."""
        issues = self.issues.get(label)
        if not issues:
            return None
        first = issues[0]
        error = SpecError(first.file, first.message, pointer=first.pointer, hint=first.hint,
                          code="spec/swagger2")
        same = [i.problem() for i in issues if i.file == first.file]
        if len(same) > 1:  # every problem of that file at once
            LoadError.__init__(error, first.file, same)
        return error

    def warnings(self, curated: set[str]) -> list[Problem]:
        """One warning per lossy construct, naming the operations (not in `curated`)
        that would fail if curated."""
        users: dict[Issue, list[str]] = {}
        for label, issues in self.issues.items():
            if label not in curated:
                for issue in issues:
                    if issue.lossy and label not in users.setdefault(issue, []):
                        users[issue].append(label)
        return [replace(issue, message=f"{issue.message}; curating {' or '.join(labels)} "
                        "will fail").problem("warning") for issue, labels in users.items()]
