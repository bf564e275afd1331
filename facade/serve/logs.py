"""Serve time: one log stream on stderr, for people (`text`) and machines (`json`).

`configured(format, level)` sets up the root logger once, at the start of `facade serve`
and `facade call` (and of a Lambda execution environment). Every record then reaches one
handler with one formatter, whoever logged it: facade's loggers and its audit log
(`facade.audit`), fastmcp's (its Rich handlers are removed), mcp's, uvicorn's, httpx's,
Python warnings and uncaught exceptions.

    json   one object per line: ts (RFC 3339, UTC), level, logger, message, then the
           record's structured fields (an audit line's, the current tool call's
           request_id and tool), and exc_info (a traceback, as one string) if any
    text   `ts LEVEL logger: message key=value …`; only a traceback continues on
           indented lines

Every line passes through `facade.call.scrub` last: no registered secret reaches it.
`--log-level` sets the root level; the audit log is written at every level, and httpx's
one line per backend request only at `debug`, where uvicorn's access log is on too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.config
import sys
import traceback
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, TextIO

from facade.call.events import current_call
from facade.call.scrub import scrub

__all__ = ["AUDIT_LOGGER", "FORMATS", "FORMAT_ENV", "LEVELS", "LEVEL_ENV", "JsonFormatter",
           "StderrHandler", "TextFormatter", "access_logged", "configured", "default_format",
           "dict_config", "install", "uvicorn_log_config"]

FORMATS = ("json", "text")
LEVELS = ("debug", "info", "warning", "error")
FORMAT_ENV = "FACADE_LOG_FORMAT"
LEVEL_ENV = "FACADE_LOG_LEVEL"
AUDIT_LOGGER = "facade.audit"
# Loggers that bring their own handlers or levels, reset to the one stream by `dict_config`.
_FOREIGN = ("fastmcp", "mcp", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx",
            "httpcore", "mcp.server.streamable_http", "py.warnings")
# Lines per request that the audit line already covers: warnings and errors only, but at
# debug (httpx: the backend request; mcp: "Terminating session" after each stateless one).
_CHATTY = {"httpx": "DEBUG", "httpcore": "INFO", "mcp.server.streamable_http": "DEBUG"}
_BASE_KEYS = ("ts", "level", "logger", "message")

_active: dict[str, Any] | None = None  # the configuration in force, for uvicorn


def default_format(stream: TextIO | None = None) -> str:
    """`text` for a person at a terminal, `json` for everything else (files, pipes,
    container runtimes, journald)."""
    stream = stream or sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return "json"


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's structured fields: its own (`extra={"fields": {...}}`), the current
    tool call's request_id and tool, and uvicorn's access line taken apart."""
    own = getattr(record, "fields", None)
    fields: dict[str, Any] = dict(own) if isinstance(own, Mapping) else {}
    call = current_call.get()
    if call is not None:
        fields.setdefault("request_id", call.request_id)
        fields.setdefault("tool", call.tool)
    if record.name == "uvicorn.access" and isinstance(record.args, tuple) and \
            len(record.args) == 5:
        client, method, path, _, status = record.args
        fields.update(client=client, method=method, path=path, status=status)
    return {k: v for k, v in fields.items() if k not in _BASE_KEYS}


def _traceback(record: logging.LogRecord) -> str | None:
    """The record's traceback as text (`exc_text` when the scrubber already replaced it)."""
    if record.exc_info and record.exc_info[0] is not None:
        return "".join(traceback.format_exception(*record.exc_info)).rstrip()
    return record.exc_text.rstrip() if record.exc_text else None


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname.lower(),
                                 "logger": record.name, "message": record.getMessage()}
        entry.update(_fields(record))
        trace = _traceback(record)
        if trace:
            entry["exc_info"] = trace
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return scrub(json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":")))


class TextFormatter(logging.Formatter):
    """`2026-12-02T17:00:00.123Z INFO  facade.serve: serving 4 tool(s) … key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\n", "\n    ")
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {message}"
        for key, value in _fields(record).items():
            shown = value if isinstance(value, str) and value and " " not in value \
                and '"' not in value else json.dumps(value, ensure_ascii=False, default=str)
            line += f" {key}={shown}"
        trace = _traceback(record)
        if trace:
            line += "\n    " + trace.replace("\n", "\n    ")
        return scrub(line)


class StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time: click's test runner and daemons
    swap it. Over stdio, stdout belongs to JSON-RPC, so nothing is ever written there."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def dict_config(format: str, level: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of the one stream (also what uvicorn is given, so
    that a worker process it starts logs the same way)."""
    if format not in FORMATS:
        raise ValueError(f"log format {format!r} is not one of {', '.join(FORMATS)}")
    if level.lower() not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    root = level.upper()
    debug = root == "DEBUG"
    formatter = "JsonFormatter" if format == "json" else "TextFormatter"
    foreign: dict[str, dict[str, Any]] = {
        name: {"handlers": [], "propagate": True, "level": "NOTSET"} for name in _FOREIGN}
    for name, at_debug in _CHATTY.items():
        foreign[name]["level"] = at_debug if debug else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"facade": {"()": f"{__name__}.{formatter}"}},
        "handlers": {"stderr": {"()": f"{__name__}.StderrHandler", "formatter": "facade"}},
        "root": {"level": root, "handlers": ["stderr"]},
        "loggers": {**foreign,
                    # The audit log is the record of who called what: every level keeps it.
                    AUDIT_LOGGER: {"level": "INFO"}},
    }


def uvicorn_log_config() -> dict[str, Any] | None:
    """What to give `uvicorn.Config(log_config=…)`: the stream `configured` set up, or
    None (leave logging alone) when facade runs inside someone else's process."""
    return _active


def access_logged() -> bool:
    """uvicorn's access log: only at `debug` (the audit log has one line per tool call)."""
    return _active is not None and _active["root"]["level"] == "DEBUG"


def _uncaught(kind: type[BaseException], value: BaseException,
              trace: TracebackType | None) -> None:
    logging.getLogger("facade").critical("unexpected error: %s", kind.__name__,
                                         exc_info=(kind, value, trace))


@contextlib.contextmanager
def configured(format: str, level: str) -> Iterator[None]:
    """The one stream, for the length of the block; what was there before comes back
    after it (a process that runs the CLI in-process, as tests do, is left as it was).

    fastmcp configures its own logger with Rich handlers when it is imported, and again
    in `temporary_log_level`: it is imported here first, its `log_enabled` setting turned
    off (the supported switch), and its handlers replaced. Its banner is off too.
    """
    import fastmcp

    global _active
    config = dict_config(format, level)
    names = ["", *_FOREIGN, AUDIT_LOGGER]
    saved = [(lg, lg.level, lg.handlers[:], lg.propagate) for lg in map(logging.getLogger,
                                                                          names)]
    settings = fastmcp.settings
    saved_settings = (settings.log_enabled, settings.show_server_banner)
    saved_hook, saved_active = sys.excepthook, _active
    settings.log_enabled = settings.show_server_banner = False
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    sys.excepthook, _active = _uncaught, config
    try:
        yield
    finally:
        logging.captureWarnings(False)
        sys.excepthook, _active = saved_hook, saved_active
        settings.log_enabled, settings.show_server_banner = saved_settings
        for logger, was, handlers, propagate in saved:
            for handler in logger.handlers[:]:
                logger.removeHandler(handler)
            for handler in handlers:
                logger.addHandler(handler)
            logger.setLevel(was)
            logger.propagate = propagate


_process = contextlib.ExitStack()  # what `install` configured, kept until the process ends


def install(format: str, level: str) -> None:
    """The one stream for the rest of the process (an AWS Lambda execution environment,
    which has no end to wrap a block around). Once: later calls change nothing."""
    if _active is None:
        _process.enter_context(configured(format, level))
