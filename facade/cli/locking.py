"""`facade lock` and `facade diff`: what changed in the spec under the curated operations."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from facade.cli.common import config_option, fail, fail_load
from facade.errors import LoadError

__all__ = ["diff", "lock"]


@click.command()
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it [default: beside the curation: curation.yaml -> "
              "curation.lock.json].")
def lock(config: Path, output: Path | None) -> None:
    """Record the spec's digest and each curated operation's shape, for drift checks (in
    a multi-API curation, for each API)."""
    from facade.curate.lock import lock_path, write_lock

    target = output or lock_path(config)
    try:
        result = write_lock(config, target)
    except LoadError as exc:
        fail_load(exc)
    except OSError as exc:
        fail(f"{target}: cannot write the lock: {exc.strerror or exc}")
    specs = f"{result.apis} API(s), specs" if result.apis else "spec"
    click.echo(f"{result.path}: {result.tools} operation(s), {specs} {result.digest[:19]}… "
               f"over {result.files} file(s)")


@click.command()
@config_option
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The new version of the spec [default: the curation's spec; in a "
              "multi-API curation, the spec of the API --api names].")
@click.option("--api", metavar="NAME", help="In a multi-API curation, compare only this API "
              "[default: every API, each with its own spec].")
@click.option("--lock", "lock_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The lock [default: beside the curation, curation.lock.json].")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
def diff(config: Path, spec_file: Path | None, api: str | None, lock_file: Path | None,
         as_json: bool) -> None:
    """Compare the lock with a version of the spec, for the curated operations only.

    Exit codes: 0 no drift, 1 breaking drift, 3 other changes only, 2 nothing could be
    compared (no lock, unreadable curation or spec, an unknown --api).
    """
    from facade.curate.drift import EXIT_ERROR, DriftError, compare

    try:
        report = compare(config, spec_file, lock_file, api)
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
