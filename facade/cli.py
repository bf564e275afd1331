"""The `facade` command. Parses arguments, calls the loader and server, renders errors.

This is the one place a `LoadError` is caught: it is printed as `file:line:col: message`
lines on stderr and the exit code is 1. Usage errors exit 2. No traceback reaches a user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from facade import __version__
from facade.errors import LoadError
from facade.loader import DEFAULT_CONFIG, load
from facade.tools import Facade

config_option = click.option(
    "--config", "-c", "config", default=DEFAULT_CONFIG, envvar="FACADE_CONFIG",
    show_default=True, type=click.Path(dir_okay=True, path_type=Path),
    help="The curation file (also FACADE_CONFIG).",
)


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(1)


def _load(config: Path) -> Facade:
    from facade.artifact import artifact_path, load_fast

    try:
        facade, why = load_fast(config, artifact=artifact_path(config))
    except LoadError as exc:
        _fail(exc.format() + f"\n{len(exc.problems)} problem(s) found.")
    if why:
        click.echo(why, err=True)
    for warning in facade.warnings:
        click.echo(warning.format(facade.config_file), err=True)
    return facade


def _server(facade: Facade, observer: Any = None, watch: Path | None = None) -> Any:
    from facade.server import build_server
    from facade.upstream import MissingCredentialError

    try:
        return build_server(facade, observer=observer, watch=watch)
    except MissingCredentialError as exc:
        _fail(f"{facade.config_file}: {exc}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facade")
def main() -> None:
    """Serve a few curated, read-only MCP tools in front of a REST API."""


@main.command()
@config_option
def check(config: Path) -> None:
    """Validate the curation against its spec; report every problem at once."""
    from facade.terminal import print_lines

    # The same lines as `_load` prints, colored only on a terminal.
    try:
        facade = load(config)
    except LoadError as exc:
        print_lines(sys.stderr, [*exc.format().splitlines(),
                                 f"{len(exc.problems)} problem(s) found."])
        sys.exit(1)
    print_lines(sys.stderr, [w.format(facade.config_file) for w in facade.warnings])
    names = ", ".join(t.name for t in facade.tools)
    print_lines(sys.stdout, [f"{facade.config_file}: ok, {len(facade.tools)} tool(s) over "
                             f"{facade.spec_file}: {names}"], ok=True)


@main.command()
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it [default: $FACADE_ARTIFACT, or beside the curation: "
              "curation.yaml -> curation.artifact.json].")
def build(config: Path, output: Path | None) -> None:
    """Compile the curation into an artifact that serve, tools and call start from."""
    from facade.artifact import artifact_path, build as build_artifact

    target = output or artifact_path(config)
    if target is None:
        raise click.UsageError("FACADE_ARTIFACT is 'off': pass --output PATH")
    try:
        result = build_artifact(config, target)
    except LoadError as exc:
        _fail(exc.format() + f"\n{len(exc.problems)} problem(s) found.")
    except OSError as exc:
        _fail(f"{target}: cannot write the artifact: {exc.strerror or exc}")
    for warning in result.facade.warnings:
        click.echo(warning.format(result.facade.config_file), err=True)
    click.echo(f"{target}: {len(result.facade.tools)} tool(s), {result.bytes:,} bytes, keyed "
               f"by {result.files} file digest(s)")


def tool_listing(facade: Facade) -> list[dict[str, Any]]:
    """The tools exactly as an MCP client receives them from `tools/list`."""
    from facade.server import CuratedTool

    return [CuratedTool.from_definition(d, None).to_mcp_tool().model_dump(
        by_alias=True, exclude_none=True, mode="json") for d in facade.tools]


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the exact tools/list JSON.")
def tools(config: Path, as_json: bool) -> None:
    """Show the tools an agent will see, and the size of the list."""
    facade = _load(config)
    listing = tool_listing(facade)
    text = json.dumps({"tools": listing}, ensure_ascii=False, separators=(",", ":"))
    if as_json:
        click.echo(json.dumps({"tools": listing}, ensure_ascii=False, indent=2))
        click.echo(f"{len(text.encode())} bytes", err=True)
        return
    from facade.terminal import Column, table

    rows = []
    for tool, definition in zip(listing, facade.tools):
        props = tool["inputSchema"].get("properties", {})
        required = set(tool["inputSchema"].get("required", []))
        args = ", ".join(n + ("" if n in required else "?") for n in props) or "-"
        size = len(json.dumps(tool, separators=(",", ":")).encode())
        ro = "yes" if tool.get("annotations", {}).get("readOnlyHint") else "NO"
        rows.append([tool["name"], f"{definition.binding.method} {definition.binding.path}",
                     args, ro, f"{size} B"])
    columns = [Column("tool", wrap=False), Column("HTTP operation"),
               Column("arguments", min_width=12), Column("read-only", wrap=False),
               Column("size", wrap=False, justify="right")]
    table(sys.stdout, columns, rows, f"{len(listing)} tool(s), tools/list is "
          f"{len(text.encode())} bytes; ? marks an optional argument")


@main.command()
@config_option
@click.argument("tool")
@click.option("--args", "args", default="{}", show_default=True, help="Arguments as JSON.")
def call(config: Path, tool: str, args: str) -> None:
    """Call one tool through the full pipeline and print the result."""
    try:
        arguments = json.loads(args)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--args") from None
    if not isinstance(arguments, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--args")
    facade = _load(config)
    names = [t.name for t in facade.tools]
    if tool not in names:
        from facade.errors import did_you_mean
        hint = did_you_mean(tool, names)
        _fail(f"unknown tool {tool!r}" + (f" ({hint})" if hint else f"; tools: {names}"))
    server = _server(facade)
    result = asyncio.run(_call(server, tool, arguments))
    if result.is_error:
        _fail("\n".join(getattr(c, "text", "") for c in result.content))
    if result.structured_content is not None:
        click.echo(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
    for block in result.content[1 if result.structured_content is not None else 0:]:
        click.echo(getattr(block, "text", ""))


async def _call(server: Any, tool: str, arguments: dict[str, Any]) -> Any:
    from fastmcp import Client

    async with Client(server) as client:
        return await client.call_tool(tool, arguments, raise_on_error=False)


@main.command()
@config_option
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio",
              show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP bind address.")
@click.option("--port", default=8000, show_default=True, type=int, help="HTTP port.")
@click.option("--allow-unauthenticated", is_flag=True, envvar="FACADE_ALLOW_UNAUTHENTICATED",
              help="Serve HTTP beyond localhost without server.auth, e.g. behind a gateway "
              "that authenticates (also FACADE_ALLOW_UNAUTHENTICATED=1).")
@click.option("--watch", is_flag=True, help="Reload the curation and spec when they "
              "change; an invalid version is rejected and the last good one keeps serving.")
def serve(config: Path, transport: str, host: str, port: int,
          allow_unauthenticated: bool, watch: bool) -> None:
    """Serve the curated tools over stdio or streamable HTTP (at /mcp)."""
    facade = _load(config)
    if transport == "stdio":
        from facade.observe import observers_for

        _server(facade, observers_for(facade), watch=config if watch else None).run(
            transport="stdio", show_banner=False)
        return
    from facade.http import ServeError, serve_http

    try:
        serve_http(facade, host=host, port=port, allow_unauthenticated=allow_unauthenticated,
                   watch=config if watch else None)
    except ServeError as exc:
        _fail(f"{facade.config_file}: {exc}")


@main.command()
@click.option("--spec", "spec_arg", required=True, metavar="PATH|URL",
              help="The OpenAPI document to curate: a file, or an http(s) URL to download "
              "into specs/ beside the curation.")
@click.option("--output", "-o", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(path_type=Path), help="Where to write the starter curation.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(spec_arg: str, output: Path, force: bool) -> None:
    """Write a starter curation.yaml listing every operation, commented out."""
    from facade.scaffold import starter_curation
    from facade.terminal import status

    if output.exists() and not force:
        _fail(f"{output} already exists; pass --force to overwrite it")
    downloaded = None
    if spec_arg.startswith(("http://", "https://")):
        spec = downloaded = _download_spec(spec_arg, output, force)
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
        if downloaded is not None:
            downloaded.unlink()
        _fail(exc.format())
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}: uncomment a few tools, then run `facade check`", err=True)


def _download_spec(url: str, output: Path, force: bool) -> Path:
    from facade.scaffold import FetchError, fetch_spec, public_url, spec_filename
    from facade.terminal import download_progress

    try:
        with download_progress(sys.stderr, f"Downloading {public_url(url)}") as advance:
            body = fetch_spec(url, progress=advance)
    except FetchError as exc:
        _fail(str(exc))
    target = output.parent / "specs" / spec_filename(url, body)
    if target.exists() and not force:
        _fail(f"{target} already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(body)
    click.echo(f"downloaded {public_url(url)} to {target} ({len(body)} bytes)", err=True)
    return target


host_argument = click.argument("host", metavar="HOST", type=click.Choice(
    ["claude-desktop", "cursor", "vscode", "claude-code"]))


@main.command()
@config_option
@host_argument
@click.option("--name", help="The server's name in the host's config [default: from the "
              "curation's server name].")
@click.option("--dry-run", is_flag=True, help="Print the entry instead of writing it.")
@click.option("--config-file", type=click.Path(dir_okay=False, path_type=Path),
              help="The host's config file [default: where HOST keeps it].")
@click.option("--force", is_flag=True, help="Replace an entry with the same name.")
def install(config: Path, host: str, name: str | None, dry_run: bool, config_file: Path | None,
            force: bool) -> None:
    """Register this curation as a stdio server with an MCP host.

    HOST is claude-desktop, cursor, vscode (.vscode/mcp.json) or claude-code (.mcp.json,
    project scope). Environment variables are passed by name, never by value.
    """
    from facade.install import HOSTS, SERVER_NAME, InstallError, requirements, snippet
    from facade.install import env_notes
    from facade.install import install as merge_into

    if name is not None and not SERVER_NAME.match(name):
        raise click.BadParameter("letters, digits, '-', '_' and '.', at most 64",
                                 param_hint="'--name'")
    try:
        req = requirements(config)
    except LoadError as exc:
        _fail(exc.format() + f"\n{len(exc.problems)} problem(s) found.")
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
            _fail(str(exc))
        if result.status == "unchanged":
            click.echo(f"{path}: {name!r} is already there, unchanged", err=True)
        else:
            backup = f" (backup: {result.backup.name})" if result.backup else ""
            click.echo(f"{path}: {result.status} {name!r}{backup}", err=True)
    for note in env_notes(target, req, name):
        click.echo(f"  {note}", err=True)
    if not dry_run and result.status != "unchanged":
        click.echo(f"  restart {target.title} (or reload its MCP servers) to use it", err=True)


@main.command()
@config_option
@click.option("--name", help="Registry name, reverse-DNS: io.github.<user>/<server>.")
@click.option("--package", default="facade", show_default=True, help="The PyPI package.")
@click.option("--description", help="At most 100 characters [default: from the curation].")
@click.option("--remote", metavar="URL", help="Also list a deployed streamable HTTP endpoint.")
@click.option("--remote-bearer", is_flag=True,
              help="The remote endpoint wants an `Authorization: Bearer` token.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write server.json here instead of printing it.")
def manifest(config: Path, name: str | None, package: str, description: str | None,
             remote: str | None, remote_bearer: bool, output: Path | None) -> None:
    """Print a server.json for the official MCP registry."""
    from facade.install import requirements
    from facade.manifest import PLACEHOLDER_NAMESPACE, server_json

    if name is not None and not re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", name):
        raise click.BadParameter("use reverse-DNS namespace/name, e.g. io.github.you/inventory",
                                 param_hint="'--name'")
    if remote is not None and not re.match(r"^https?://\S+$", remote):
        raise click.BadParameter("must be an http(s) URL", param_hint="'--remote'")
    try:
        req = requirements(config)
    except LoadError as exc:
        _fail(exc.format() + f"\n{len(exc.problems)} problem(s) found.")
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
