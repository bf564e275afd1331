"""`facade init`, `schema`, `install` and `manifest`: starting a curation, and handing it
to MCP hosts and the registry."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from facade.cli.common import config_option, fail, fail_load
from facade.errors import LoadError
from facade.loading.loader import DEFAULT_CONFIG
from facade.version import DISTRIBUTION

if TYPE_CHECKING:
    from facade.curate.install import Runner

__all__ = ["SCHEMA_FILE", "init", "install", "manifest", "schema", "schema_text"]


@click.command()
@click.option("--spec", "spec_arg", required=True, metavar="PATH|URL",
              help="The OpenAPI document to curate: a file, or an http(s) URL to download "
              "into specs/ beside the curation.")
@click.option("--output", "-o", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(path_type=Path), help="Where to write the starter curation.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(spec_arg: str, output: Path, force: bool) -> None:
    """Write a starter curation.yaml listing every operation, commented out."""
    from facade.cli.terminal import status
    from facade.curate.scaffold import starter_curation

    if output.exists() and not force:
        fail(f"{output} already exists; pass --force to overwrite it")
    downloaded: list[Path] = []
    if spec_arg.startswith(("http://", "https://")):
        downloaded = _download_spec(spec_arg, output, force)
        spec = downloaded[0]
    else:
        spec = Path(spec_arg)
        if not spec.is_file():
            raise click.BadParameter(f"file {spec_arg!r} does not exist", param_hint="'--spec'")
    # Only a big spec takes long enough to deserve a spinner, and only people see it.
    size = spec.stat().st_size
    spinner = status(sys.stderr, f"Reading {spec.name} ({size / 1e6:.1f} MB)") \
        if size > 1_000_000 else contextlib.nullcontext()
    try:
        with spinner:
            text = starter_curation(spec, output)
    except LoadError as exc:
        for path in downloaded:
            path.unlink()
        fail(exc.format())
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}: uncomment a few tools, then run `facade check`", err=True)
    _write_schema(output.parent / SCHEMA_FILE, force)


# The starter curation's first line points here, relative to itself:
# `# yaml-language-server: $schema=./schema/curation.schema.json`.
SCHEMA_FILE = Path("schema") / "curation.schema.json"


def schema_text() -> str:
    """The JSON Schema of curation.yaml, as committed in `schema/curation.schema.json`."""
    from facade.loading.curation import curation_json_schema

    return json.dumps(curation_json_schema(), indent=2, sort_keys=True) + "\n"


def _write_schema(target: Path, force: bool) -> None:
    """`init`: the schema beside the starter, for completion in editors (README)."""
    text = schema_text()
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return
    if target.exists() and not force:
        click.echo(f"kept {target}, which is not this facade's schema; `facade schema -o "
                   f"{target}` replaces it", err=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}: completion and checks for curation.yaml in editors",
               err=True)


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write it here instead of printing it.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of curation.yaml (for editor completion)."""
    if output is None:
        click.echo(schema_text(), nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(schema_text(), encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


def _download_spec(url: str, output: Path, force: bool) -> list[Path]:
    """Download the spec, and the files its relative `$ref`s reach, into specs/; return
    the files written, the root document first."""
    from facade.cli.terminal import download_progress
    from facade.curate.scaffold import (
        FetchError,
        fetch_referenced,
        fetch_spec,
        public_url,
        spec_filename,
    )

    try:
        with download_progress(sys.stderr, f"Downloading {public_url(url)}") as advance:
            body = fetch_spec(url, progress=advance)
        others = fetch_referenced(url, body)
    except FetchError as exc:
        fail(str(exc))
    target = output.parent / "specs" / spec_filename(url, body)
    files = [(target, url, body)] + [(target.parent / relative, where, data)
                                     for relative, where, data in others]
    for path, _, _ in files:
        if path.exists() and not force:
            fail(f"{path} already exists; pass --force to overwrite it")
    for path, where, data in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        click.echo(f"downloaded {public_url(where)} to {path} ({len(data)} bytes)", err=True)
    return [path for path, _, _ in files]


host_argument = click.argument("host", metavar="HOST", type=click.Choice(
    ["claude-desktop", "cursor", "vscode", "claude-code"]))


@click.command()
@config_option
@host_argument
@click.option("--name", help="The server's name in the host's config [default: from the "
              "curation's server name].")
@click.option("--dry-run", is_flag=True, help="Print the entry instead of writing it.")
@click.option("--config-file", type=click.Path(dir_okay=False, path_type=Path),
              help="The host's config file [default: where HOST keeps it].")
@click.option("--force", is_flag=True, help="Replace an entry with the same name.")
@click.option("--runner", type=click.Choice(["python", "uvx"]), default="python",
              show_default=True, help="What the host runs: this Python interpreter (`-m "
              "facade`), or `uvx --from facade-mcp==VERSION facade` (needs uv on the host).")
def install(config: Path, host: str, name: str | None, dry_run: bool, config_file: Path | None,
            force: bool, runner: Runner) -> None:
    """Register this curation as a stdio server with an MCP host.

    HOST is claude-desktop, cursor, vscode (.vscode/mcp.json) or claude-code (.mcp.json,
    project scope). Environment variables are passed by name, never by value.
    """
    from facade.curate.install import (
        HOSTS,
        SERVER_NAME,
        InstallError,
        env_notes,
        requirements,
        snippet,
    )
    from facade.curate.install import install as merge_into

    if name is not None and not SERVER_NAME.match(name):
        raise click.BadParameter("letters, digits, '-', '_' and '.', at most 64",
                                 param_hint="'--name'")
    try:
        req = dataclasses.replace(requirements(config), runner=runner)
    except LoadError as exc:
        fail_load(exc)
    target = HOSTS[host]
    name = name or req.slug
    path = (config_file or target.default_path()).absolute()
    if dry_run:
        click.echo(json.dumps(snippet(target, req, name), indent=2, ensure_ascii=False))
        click.echo(f"(dry run: would merge this into {path})", err=True)
    else:
        try:
            result = merge_into(target, req, name, path, force=force)
        except InstallError as exc:
            fail(str(exc))
        if result.status == "unchanged":
            click.echo(f"{path}: {name!r} is already there, unchanged", err=True)
        else:
            backup = f" (backup: {result.backup.name})" if result.backup else ""
            click.echo(f"{path}: {result.status} {name!r}{backup}", err=True)
    for note in env_notes(target, req, name):
        click.echo(f"  {note}", err=True)
    if not dry_run and result.status != "unchanged":
        click.echo(f"  restart {target.title} (or reload its MCP servers) to use it", err=True)


@click.command()
@config_option
@click.option("--name", help="Registry name, reverse-DNS: io.github.<user>/<server>.")
@click.option("--package", default=DISTRIBUTION, show_default=True, help="The PyPI package.")
@click.option("--description", help="At most 100 characters [default: from the curation].")
@click.option("--remote", metavar="URL", help="Also list a deployed streamable HTTP endpoint.")
@click.option("--remote-bearer", is_flag=True,
              help="The remote endpoint wants an `Authorization: Bearer` token.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write server.json here instead of printing it.")
def manifest(config: Path, name: str | None, package: str, description: str | None,
             remote: str | None, remote_bearer: bool, output: Path | None) -> None:
    """Print a server.json for the official MCP registry."""
    from facade.curate.install import requirements
    from facade.curate.manifest import PLACEHOLDER_NAMESPACE, server_json

    if name is not None and not re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", name):
        raise click.BadParameter("use reverse-DNS namespace/name, e.g. io.github.you/inventory",
                                 param_hint="'--name'")
    if remote is not None and not re.match(r"^https?://\S+$", remote):
        raise click.BadParameter("must be an http(s) URL", param_hint="'--remote'")
    try:
        req = requirements(config)
    except LoadError as exc:
        fail_load(exc)
    data = server_json(req, name=name, package=package, description=description,
                       remote=remote, remote_bearer=remote_bearer)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    if name is None:
        click.echo(f"note: {PLACEHOLDER_NAMESPACE!r} is a placeholder; pass --name with a "
                   "namespace you own before publishing", err=True)
