"""Keep secrets out of logs, error messages and results.

The backend credentials are registered here when the server starts, and the tokens of a
token exchange (the caller's subject token and the exchanged token) when they are used:
those are many and short-lived, so only the most recent `_MAX_EPHEMERAL` of them are kept.
`scrub()` replaces each registered value in a text with `***`; `install_log_scrubber()` makes every log
record (facade's, fastmcp's, httpx's) pass through it, message and traceback alike.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["MASK", "contains_secret", "install_log_scrubber", "register_ephemeral",
           "register_secrets", "scrub", "scrub_data", "secrets_scope"]

MASK = "***"
_MIN_LENGTH = 4  # shorter values would mask ordinary words; such secrets are not secrets
_MAX_EPHEMERAL = 20_000
_secrets: tuple[str, ...] = ()  # longest first: a secret inside another is masked with it
_lasting: frozenset[str] = frozenset()  # from `register_secrets`: kept for good
_ephemeral: dict[str, None] = {}  # oldest first
_lock = threading.Lock()
_installed = False


def register_secrets(values: Iterable[str]) -> None:
    """Add secret values (and their base64/basic-auth forms are the caller's concern)."""
    global _secrets, _lasting
    with _lock:
        _lasting = _lasting | {v for v in values if len(v) >= _MIN_LENGTH}
        _secrets = _longest_first(_lasting.union(_ephemeral))


def register_ephemeral(values: Iterable[str]) -> None:
    """Add short-lived secrets (exchanged tokens); the oldest are dropped past a bound."""
    global _secrets
    with _lock:
        for value in values:
            if len(value) >= _MIN_LENGTH:
                _ephemeral.pop(value, None)
                _ephemeral[value] = None
        while len(_ephemeral) > _MAX_EPHEMERAL:
            del _ephemeral[next(iter(_ephemeral))]
        _secrets = _longest_first(_lasting.union(_ephemeral))


def _longest_first(values: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(values, key=len, reverse=True))


@contextlib.contextmanager
def secrets_scope() -> Iterator[None]:
    """Secrets registered inside the block are forgotten when it ends: the registry is back
    to what it held before. For a process that builds and drops servers in turn (tests,
    code that embeds facade); `facade serve` registers once and never needs it."""
    global _secrets
    with _lock:
        saved = _secrets
    try:
        yield
    finally:
        with _lock:
            _secrets = saved


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def contains_secret(text: str) -> bool:
    return any(secret in text for secret in _secrets)


def scrub_data(data: Any) -> Any:
    """`data` (decoded JSON) with every registered secret masked in keys and strings."""
    if isinstance(data, str):
        return scrub(data)
    if isinstance(data, dict):
        return {scrub(k): scrub_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [scrub_data(v) for v in data]
    return data


def install_log_scrubber() -> None:
    """Wrap the log record factory so that no record carries a registered secret."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _secrets:
            return record
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not a leak
            return record
        if contains_secret(message):
            record.msg, record.args = scrub(message), ()
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            if contains_secret(text):
                record.exc_info, record.exc_text = None, scrub(text)
        return record

    logging.setLogRecordFactory(factory)
