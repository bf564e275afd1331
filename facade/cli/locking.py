"""`facade lock` and `facade diff`: what changed in the spec under the curated operations."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from facade.cli.common import config_option, fail, fail_load
from facade.errors import LoadError

__all__ = ["diff", "lock"]


_MULTI_API = "{config}: `facade {command}` does not support multi-API curations (`apis:`) yet"


@click.command()
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it [default: beside the curation: curation.yaml -> "
              "curation.lock.json].")
def lock(config: Path, output: Path | None) -> None:
    """Record the spec's digest and each curated operation's shape, for drift checks."""
    from facade.curate.lock import MultiAPIUnsupported, lock_path, write_lock

    target = output or lock_path(config)
    try:
        result = write_lock(config, target)
    except MultiAPIUnsupported:
        fail(_MULTI_API.format(config=config, command="lock"))
    except LoadError as exc:
        fail_load(exc)
    except OSError as exc:
        fail(f"{target}: cannot write the lock: {exc.strerror or exc}")
    click.echo(f"{result.path}: {result.tools} operation(s), spec {result.digest[:19]}… "
               f"over {result.files} file(s)")


@click.command()
@config_option
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The new version of the spec [default: the curation's spec].")
@click.option("--lock", "lock_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The lock [default: beside the curation, curation.lock.json].")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
def diff(config: Path, spec_file: Path | None, lock_file: Path | None, as_json: bool) -> None:
    """Compare the lock with a version of the spec, for the curated operations only.

    Exit codes: 0 no drift, 1 breaking drift, 3 other changes only, 2 nothing could be
    compared (no lock, unreadable curation or spec).
    """
    from facade.curate.drift import EXIT_ERROR, DriftError, compare
    from facade.curate.lock import MultiAPIUnsupported

    try:
        report = compare(config, spec_file, lock_file)
    except MultiAPIUnsupported:
        fail(_MULTI_API.format(config=config, command="diff"))
    except LoadError as exc:
        click.echo(exc.format(), err=True)
        sys.exit(EXIT_ERROR)
    except DriftError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_ERROR)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(report.exit_code)
