"""Load time: `${VAR}` and `${VAR:-default}` in curation values, from the environment.

An unset variable without a default is a problem reported where the value stands; its
value, when set, never appears in a message.
"""

from __future__ import annotations

import os
import re

from facade.errors import PathPart, Problem
from facade.loading.yamlsource import YAMLDocument

__all__ = ["EnvExpander", "expand_env"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, environ: dict[str, str] | os._Environ[str]) -> tuple[str, list[str]]:
    """Expand `${VAR}` and `${VAR:-default}`; also return the names that had no value."""
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        missing.append(name)
        return ""

    return _VAR.sub(sub, text), missing


class EnvExpander:
    """Expands `${VAR}` in a curation value, reporting each unset variable where it stands."""

    def __init__(self, doc: YAMLDocument, environ: dict[str, str],
                 problems: list[Problem]) -> None:
        self.doc, self.environ, self.problems = doc, environ, problems

    def __call__(self, text: str, at: tuple[PathPart, ...]) -> str:
        value, missing = expand_env(text, self.environ)
        for name in missing:
            self.problems.append(self.doc.problem(
                at, f"environment variable {name!r} is not set",
                hint=f"export {name}=… or write ${{{name}:-default}}"))
        return value
