"""What every `facade` command shares: the options, loading, and failing with one message.

A `LoadError` is printed as `file:line:col: message` lines on stderr and the exit code is
1; no traceback reaches a user. Inside `log_stream(..., messages=True)` (`facade serve`,
whose stderr is a log stream), those lines and the load-time notes are log records instead,
in the stream's format.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from facade.errors import LoadError
from facade.loading.loader import DEFAULT_CONFIG
from facade.tools import Facade

__all__ = ["config_option", "fail", "fail_load", "fixtures_option", "load_facade",
           "log_options", "log_stream", "note", "server_for", "skip_httpx_cli"]

_F = TypeVar("_F", bound=Callable[..., Any])
_cli_logger = logging.getLogger("facade")
_as_records = False  # inside `log_stream(..., messages=True)`

config_option = click.option(
    "--config", "-c", "config", default=DEFAULT_CONFIG, envvar="FACADE_CONFIG",
    show_default=True, type=click.Path(dir_okay=True, path_type=Path),
    help="The curation file (also FACADE_CONFIG).",
)


def fail(message: str) -> NoReturn:
    if _as_records:
        for line in message.splitlines():
            _cli_logger.error("%s", line)
    else:
        click.echo(message, err=True)
    sys.exit(1)


def note(line: str, level: int = logging.INFO) -> None:
    """A line for the person running the command (on stderr), or a log record in
    `facade serve`."""
    if _as_records:
        _cli_logger.log(level, "%s", line.removeprefix("facade: "))
    else:
        click.echo(line, err=True)


def log_options(command: _F) -> _F:
    """`--log-format` and `--log-level`, for the commands that log (serve, call)."""
    from facade.serve.logs import FORMAT_ENV, FORMATS, LEVEL_ENV, LEVELS

    command = click.option(
        "--log-level", type=click.Choice(LEVELS, case_sensitive=False), default="info",
        show_default=True, envvar=LEVEL_ENV,
        help=f"The least severe records written (also {LEVEL_ENV}); the audit log is "
        "written at every level.")(command)
    return click.option(
        "--log-format", type=click.Choice(FORMATS), envvar=FORMAT_ENV,
        help="One line per record on stderr: json (one object a line), or text for "
        f"people (also {FORMAT_ENV}) [default: text on a terminal, else json].")(command)


@contextlib.contextmanager
def log_stream(log_format: str | None, log_level: str, *, messages: bool = False
               ) -> Iterator[None]:
    """Every log record on stderr in one format, for the length of the block; with
    `messages`, `fail` and `note` write records too."""
    global _as_records
    from facade.serve.logs import configured, default_format

    saved = _as_records
    with configured(log_format or default_format(), log_level.lower()):
        _as_records = messages or saved
        try:
            yield
        finally:
            _as_records = saved


def fail_load(exc: LoadError) -> NoReturn:
    """Every problem, one per line, then their count: what `check` prints."""
    fail(exc.format() + f"\n{len(exc.problems)} problem(s) found.")


def load_facade(config: Path) -> Facade:
    from facade.loading.artifact import artifact_path, load_fast

    try:
        facade, why = load_fast(config, artifact=artifact_path(config))
    except LoadError as exc:
        fail_load(exc)
    if why:
        note(why)
    for warning in facade.warnings:
        note(warning.format(facade.config_file), logging.WARNING)
    return facade


def server_for(facade: Facade, observer: Any = None, watch: Path | None = None,
            transport: Any = None) -> Any:
    skip_httpx_cli()
    from facade.call.upstream import MissingCredentialError
    from facade.serve.server import build_server, callerless_problems

    # stdio and `facade call` have no verified caller: per-user identity cannot work there.
    problems = callerless_problems(facade, os.environ)
    if problems:
        fail("\n".join(f"{facade.config_file}: {p}" for p in problems))
    try:
        return build_server(facade, observer=observer, watch=watch, transport=transport)
    except MissingCredentialError as exc:
        fail(f"{facade.config_file}: {exc}")


def skip_httpx_cli() -> None:
    """Keep `import httpx` from importing httpx's own command-line client.

    httpx imports it (and with it pygments' lexers, ~20 ms) whenever click, rich and
    pygments are installed, as they are beside fastmcp. A server never runs it; marked
    absent, httpx falls back to the stub it defines for installs without them.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


fixtures_option = click.option(
    "--fixtures", "fixtures_dir", type=click.Path(file_okay=False, path_type=Path),
    help="The fixtures folder [default: fixtures/ beside the curation].")
