"""Reading facade's log stream in tests: with `--log-format json` (the default when stderr
is not a terminal) every line on stderr is one JSON object that starts with these keys."""

from __future__ import annotations

import json
import re
from typing import Any

BASE_KEYS = ["ts", "level", "logger", "message"]
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = {"debug", "info", "warning", "error", "critical"}


def records(text: str) -> list[dict[str, Any]]:
    """Every line of `text` as a log record; fails on any line that is not one."""
    found = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
        assert isinstance(record, dict) and list(record)[:4] == BASE_KEYS, line
        assert RFC3339_UTC.match(record["ts"]) and record["level"] in LEVELS, line
        found.append(record)
    return found


def messages(text: str, logger: str | None = None) -> list[str]:
    """The messages of the records in `text` (of one logger, if named)."""
    return [r["message"] for r in records(text) if logger is None or r["logger"] == logger]


def audit(text: str) -> list[dict[str, Any]]:
    """The audit lines in `text`: one per tool call."""
    return [r for r in records(text) if r["logger"] == "facade.audit"]
