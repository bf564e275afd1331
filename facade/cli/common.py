"""What every `facade` command shares: the options, loading, and failing with one message.

A `LoadError` is printed as `file:line:col: message` lines on stderr and the exit code is
1; no traceback reaches a user.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from facade.errors import LoadError
from facade.loading.loader import DEFAULT_CONFIG
from facade.tools import Facade

__all__ = ["config_option", "fail", "fail_load", "fixtures_option", "load_facade",
           "server_for", "skip_httpx_cli"]

config_option = click.option(
    "--config", "-c", "config", default=DEFAULT_CONFIG, envvar="FACADE_CONFIG",
    show_default=True, type=click.Path(dir_okay=True, path_type=Path),
    help="The curation file (also FACADE_CONFIG).",
)


def fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(1)


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
        click.echo(why, err=True)
    for warning in facade.warnings:
        click.echo(warning.format(facade.config_file), err=True)
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
