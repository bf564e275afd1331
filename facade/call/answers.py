"""Call time: a backend's answer checked against the schema its spec documents.

`AnswerCheck.deviations(body)` costs one compiled validator run when the answer conforms,
which is the common case; only when it does not are the deviations classified
(`facade.deviations`). What becomes of them is the tool's choice (`response.validate`):
`tolerant` passes the data on and reports, `strict` fails the call.

Each deviation is logged once per (tool, path, kind) in a process, at WARNING on the
`facade.deviations` logger (stderr unless logging is configured otherwise), with the
documented and actual JSON types and never a value. Observers get every call's
deviations (`Observer.response_deviations`), which `/metrics` counts.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from facade.call.checks import FAST_ANSWER_KEYWORDS, SchemaCheck
from facade.deviations import FORMATS, Deviation, deviations, json_type
from facade.tools import ToolDefinition

__all__ = ["AnswerCheck", "log_once", "not_an_object"]

logger = logging.getLogger("facade.deviations")
_MAX_LOGGED = 10_000  # distinct (tool, path, kind) remembered; past that, no more lines
_logged: set[tuple[str, str, str]] = set()
_lock = threading.Lock()


class AnswerCheck:
    """The documented schema of one tool's answers, with its compiled fast check."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._check = SchemaCheck(schema, FAST_ANSWER_KEYWORDS, FORMATS)

    def deviations(self, body: Any) -> list[Deviation]:
        """How `body` departs from the documented schema; [] in the common case, cheaply."""
        if self._check.fast_accepts(body):
            return []
        # The compiled check is the stricter of the two (it refuses 1.0 for an integer,
        # which JSON Schema allows): what it rejects and the walk finds fine is fine.
        return deviations(self.schema, body)


def not_an_object(body: Any) -> Deviation:
    """A body that is not an object, where the documented result is one."""
    return Deviation("", "null" if body is None else "type", "object", json_type(body))


def log_once(definition: ToolDefinition, found: list[Deviation]) -> None:
    """One WARNING line per (tool, path, kind) seen for the first time in this process."""
    fresh = []
    with _lock:
        for d in found:
            key = (definition.name, d.path, d.kind)
            if key not in _logged and len(_logged) < _MAX_LOGGED:
                _logged.add(key)
                fresh.append(d)
    binding = definition.binding
    outcome = "the call failed" if definition.validate == "strict" else "passed on as it is"
    for d in fresh:
        logger.warning("tool %s: the backend's answer to %s %s deviates from its documented "
                       "schema at %s; %s (response.validate: %s)", definition.name,
                       binding.method, binding.path, d.describe(), outcome, definition.validate)
