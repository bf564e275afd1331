"""The `facade` command. Parses arguments, calls the loader and server, renders errors.

This is the one place a `LoadError` is caught: it is printed as `file:line:col: message`
lines on stderr and the exit code is 1. Usage errors exit 2. No traceback reaches a user.
"""

from __future__ import annotations

import asyncio
import json
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
    try:
        facade = load(config)
    except LoadError as exc:
        _fail(exc.format() + f"\n{len(exc.problems)} problem(s) found.")
    for warning in facade.warnings:
        click.echo(warning.format(facade.config_file), err=True)
    return facade


def _server(facade: Facade) -> Any:
    from facade.server import build_server
    from facade.upstream import MissingCredentialError

    try:
        return build_server(facade)
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
    facade = _load(config)
    names = ", ".join(t.name for t in facade.tools)
    click.echo(f"{facade.config_file}: ok, {len(facade.tools)} tool(s) over "
               f"{facade.spec_file}: {names}")


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
    for tool, definition in zip(listing, facade.tools):
        props = tool["inputSchema"].get("properties", {})
        required = set(tool["inputSchema"].get("required", []))
        args = ", ".join(n + ("" if n in required else "?") for n in props) or "-"
        size = len(json.dumps(tool, separators=(",", ":")).encode())
        ro = "read-only" if tool.get("annotations", {}).get("readOnlyHint") else "WRITES"
        click.echo(f"{tool['name']}  [{definition.binding.method} {definition.binding.path}, "
                   f"{ro}, {size} bytes]\n  args: {args}\n  "
                   + tool.get("description", "").splitlines()[0][:100])
    click.echo(f"{len(listing)} tool(s), tools/list is {len(text.encode())} bytes")


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
def serve(config: Path, transport: str, host: str, port: int) -> None:
    """Serve the curated tools over stdio or streamable HTTP (at /mcp)."""
    facade = _load(config)
    server = _server(facade)
    if transport == "stdio":
        server.run(transport="stdio", show_banner=False)
    else:
        click.echo(f"facade: serving {len(facade.tools)} tool(s) at http://{host}:{port}/mcp",
                   err=True)
        server.run(transport="http", show_banner=False, host=host, port=port, path="/mcp",
                   stateless_http=True, json_response=True)


@main.command()
@click.option("--spec", required=True, type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="The OpenAPI document to curate.")
@click.option("--output", "-o", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(path_type=Path), help="Where to write the starter curation.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(spec: Path, output: Path, force: bool) -> None:
    """Write a starter curation.yaml listing every operation, commented out."""
    from facade.scaffold import starter_curation

    if output.exists() and not force:
        _fail(f"{output} already exists; pass --force to overwrite it")
    try:
        text = starter_curation(spec, output)
    except LoadError as exc:
        _fail(exc.format())
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}: uncomment a few tools, then run `facade check`", err=True)
