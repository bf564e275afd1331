"""The `facade` command. Parses arguments, calls the loader and server, renders errors.

This is the one place a `LoadError` is caught: it is printed as `file:line:col: message`
lines on stderr and the exit code is 1. Usage errors exit 2. No traceback reaches a user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from facade import __version__
from facade.errors import LoadError, Problem
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


def _fail_load(exc: LoadError) -> NoReturn:
    """Every problem, one per line, then their count: what `check` prints."""
    _fail(exc.format() + f"\n{len(exc.problems)} problem(s) found.")


def _refuse_multi_api(config: Path, command: str) -> None:
    """Exit 1 with one line when `config` is a multi-API curation `command` cannot handle."""
    from facade.yamlsource import read_yaml

    try:
        data = read_yaml(config).data
    except LoadError:
        return  # the command reports it as it always does
    if isinstance(data, dict) and "apis" in data:
        _fail(f"{config}: `facade {command}` does not support multi-API curations (`apis:`) "
              "yet")


def _load(config: Path) -> Facade:
    from facade.artifact import artifact_path, load_fast

    try:
        facade, why = load_fast(config, artifact=artifact_path(config))
    except LoadError as exc:
        _fail_load(exc)
    if why:
        click.echo(why, err=True)
    for warning in facade.warnings:
        click.echo(warning.format(facade.config_file), err=True)
    return facade


def _server(facade: Facade, observer: Any = None, watch: Path | None = None,
            transport: Any = None) -> Any:
    _skip_httpx_cli()
    from facade.server import build_server
    from facade.upstream import MissingCredentialError

    try:
        return build_server(facade, observer=observer, watch=watch, transport=transport)
    except MissingCredentialError as exc:
        _fail(f"{facade.config_file}: {exc}")


def _skip_httpx_cli() -> None:
    """Keep `import httpx` from importing httpx's own command-line client.

    httpx imports it (and with it pygments' lexers, ~20 ms) whenever click, rich and
    pygments are installed, as they are beside fastmcp. A server never runs it; marked
    absent, httpx falls back to the stub it defines for installs without them.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facade")
def main() -> None:
    """Serve a few curated, read-only MCP tools in front of a REST API."""


@main.command()
@config_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors: exit 1 if any.")
@click.option("--max-tokens", type=click.IntRange(min=1), metavar="N",
              help="Exit 1 when tools/list is estimated at more than N tokens (bytes / 4).")
def check(config: Path, strict: bool, max_tokens: int | None) -> None:
    """Validate the curation against its spec; report every problem at once."""
    from facade.drift import drift_lines
    from facade.terminal import print_lines

    # The same lines as `_load` prints, colored only on a terminal.
    try:
        facade = load(config)
    except LoadError as exc:
        drift, _ = drift_lines(config)  # with a lock: what changed in the spec since
        print_lines(sys.stderr, [*exc.format().splitlines(), *drift,
                                 f"{len(exc.problems)} problem(s) found."])
        sys.exit(1)
    warnings = [*facade.warnings, *_lint(config, facade)]
    print_lines(sys.stderr, [w.format(facade.config_file) for w in warnings])
    drift, breaking = drift_lines(config)
    print_lines(sys.stderr, drift)
    if breaking:
        sys.exit(1)
    _check_schemas(facade)
    _enforce(facade, len(warnings) if strict else 0, max_tokens)
    names = ", ".join(t.name for t in facade.tools)
    print_lines(sys.stdout, [f"{facade.config_file}: ok, {len(facade.tools)} tool(s) over "
                             f"{facade.spec_file}: {names}"], ok=True)


def _check_schemas(facade: Facade) -> None:
    """The generated schemas are valid JSON Schema 2020-12. Checked here, not at every
    start; a failure is a facade bug, reported as one line rather than a traceback."""
    import jsonschema

    tools = [*facade.tools, *(r.tool for r in facade.resources)]
    for tool in tools:
        for kind, schema in (("input", tool.input_schema), ("output", tool.output_schema)):
            if schema is None:
                continue
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                _fail(f"{facade.config_file}: tools.{tool.name}: facade built an invalid "
                      f"{kind} schema ({exc.message}); please report this with the spec")


def _lint(config: Path, facade: Facade) -> list[Problem]:
    """The curator's lint (`facade.curator_lint`) over a façade that loaded."""
    from facade.curation import Curation, parse_any_curation
    from facade.curator_lint import lint_curation
    from facade.multi import lint_multi
    from facade.yamlsource import read_yaml

    try:
        doc = read_yaml(config)
        curation = parse_any_curation(doc)
        if isinstance(curation, Curation):
            return lint_curation(facade, curation, doc)
        return lint_multi(facade, curation, doc)
    except LoadError:  # the file changed since it loaded: the next check will say
        return []


def _enforce(facade: Facade, strict_warnings: int, max_tokens: int | None) -> None:
    """`check --strict` and `check --max-tokens`: exit 1 when either is exceeded."""
    failed = False
    if strict_warnings:
        click.echo(f"{strict_warnings} warning(s), which --strict treats as errors.", err=True)
        failed = True
    if max_tokens is not None:
        from facade.budget import listing_budget

        budget = listing_budget(facade.tools, tool_listing(facade))
        size = f"tools/list is ~{budget.tokens:,} tokens ({budget.bytes:,} bytes, estimated " \
            "as bytes / 4)"
        if budget.tokens > max_tokens:
            largest = ", ".join(f"{t.name} ~{t.tokens:,}" for t in budget.largest())
            click.echo(f"{facade.config_file}: {size}, over --max-tokens {max_tokens:,}; "
                       f"largest: {largest} (drop tools, or trim results with "
                       "response.include)", err=True)
            failed = True
        else:
            click.echo(f"{facade.config_file}: {size}, within --max-tokens {max_tokens:,}",
                       err=True)
    if failed:
        sys.exit(1)


@main.command()
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it [default: $FACADE_ARTIFACT, or beside the curation: "
              "curation.yaml -> curation.artifact.json].")
def build(config: Path, output: Path | None) -> None:
    """Compile the curation into an artifact that serve, tools and call start from."""
    from facade.artifact import artifact_path
    from facade.artifact import build as build_artifact

    target = output or artifact_path(config)
    if target is None:
        raise click.UsageError("FACADE_ARTIFACT is 'off': pass --output PATH")
    try:
        result = build_artifact(config, target)
    except LoadError as exc:
        _fail_load(exc)
    except OSError as exc:
        _fail(f"{target}: cannot write the artifact: {exc.strerror or exc}")
    for warning in result.facade.warnings:
        click.echo(warning.format(result.facade.config_file), err=True)
    click.echo(f"{target}: {len(result.facade.tools)} tool(s), {result.bytes:,} bytes, keyed "
               f"by {result.files} file digest(s)")


@main.command()
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it [default: beside the curation: curation.yaml -> "
              "curation.lock.json].")
def lock(config: Path, output: Path | None) -> None:
    """Record the spec's digest and each curated operation's shape, for drift checks."""
    from facade.drift import lock_path, write_lock

    target = output or lock_path(config)
    _refuse_multi_api(config, "lock")
    try:
        result = write_lock(config, target)
    except LoadError as exc:
        _fail_load(exc)
    except OSError as exc:
        _fail(f"{target}: cannot write the lock: {exc.strerror or exc}")
    click.echo(f"{result.path}: {result.tools} operation(s), spec {result.digest[:19]}… "
               f"over {result.files} file(s)")


@main.command()
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
    from facade.drift import EXIT_ERROR, DriftError, compare

    _refuse_multi_api(config, "diff")
    try:
        report = compare(config, spec_file, lock_file)
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


def tool_listing(facade: Facade) -> list[dict[str, Any]]:
    """The tools exactly as an MCP client receives them from `tools/list`."""
    from facade.budget import listing

    return listing(facade.tools)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the exact tools/list JSON.")
@click.option("--budget", is_flag=True, help="Bytes and estimated tokens per tool and in "
              "total, beside the whole spec exposed uncurated (with --json: as JSON).")
def tools(config: Path, as_json: bool, budget: bool) -> None:
    """Show the tools an agent will see, and the size of the list."""
    facade = _load(config)
    listing = tool_listing(facade)
    if budget:
        _print_budget(config, facade, listing, as_json)
        return
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


def _print_budget(config: Path, facade: Facade, listing: list[dict[str, Any]],
                  as_json: bool) -> None:
    """`tools --budget`: the curated list's cost, then the uncurated spec's, for scale."""
    from facade.budget import BYTES_PER_TOKEN, listing_budget, uncurated_budget
    from facade.terminal import Column, status, table

    curated = listing_budget(facade.tools, listing)
    if not as_json:
        rows = [[t.name, t.operation, f"{t.bytes:,}", f"{t.tokens:,}",
                 f"{100 * t.bytes / curated.bytes:.0f}%"] for t in curated.tools]
        columns = [Column("tool", wrap=False), Column("HTTP operation"),
                   Column("bytes", wrap=False, justify="right"),
                   Column("~tokens", wrap=False, justify="right"),
                   Column("share", wrap=False, justify="right")]
        table(sys.stdout, columns, rows, f"{len(curated.tools)} tool(s): tools/list is "
              f"{curated.bytes:,} bytes, ~{curated.tokens:,} tokens (estimated as bytes / "
              f"{BYTES_PER_TOKEN})")
        sys.stdout.flush()
    try:
        with status(sys.stderr, f"Building every operation of {facade.spec_file}"):
            whole = uncurated_budget(config)
    except LoadError as exc:
        whole = None
        click.echo(f"uncurated: cannot build the spec's operations:\n{exc.format()}",
                   err=True)
    if as_json:
        data: dict[str, Any] = {"estimator": f"ceil(bytes / {BYTES_PER_TOKEN})", "curated": {
            "bytes": curated.bytes, "tokens": curated.tokens,
            "tools": [{"name": t.name, "operation": t.operation, "bytes": t.bytes,
                       "tokens": t.tokens} for t in curated.tools]}}
        if whole is not None:
            data["uncurated"] = {"operations": whole.operations, "skipped": whole.skipped,
                                 "bytes": whole.budget.bytes, "tokens": whole.budget.tokens,
                                 "seconds": round(whole.seconds, 3)}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if whole is None:
        return
    share = f"{100 * curated.bytes / whole.budget.bytes:.1f}%" if whole.budget.bytes else "-"
    built = whole.operations - whole.skipped
    skipped = f" ({whole.skipped} more cannot be built uncurated)" if whole.skipped else ""
    click.echo(f"uncurated: {built} operation(s) of {facade.spec_file} as tools would be "
               f"{whole.budget.bytes:,} bytes, ~{whole.budget.tokens:,} tokens{skipped}")
    click.echo(f"the curated list is {share} of that (the uncurated build took "
               f"{whole.seconds:.1f} s)")


fixtures_option = click.option(
    "--fixtures", "fixtures_dir", type=click.Path(file_okay=False, path_type=Path),
    help="The fixtures folder [default: fixtures/ beside the curation].")


@main.command()
@config_option
@click.argument("tool")
@click.option("--args", "args", default="{}", show_default=True, help="Arguments as JSON.")
@click.option("--record", metavar="NAME", help="Also save the backend's answer and the "
              "result as a contract example, fixtures/TOOL/NAME.json (see `facade test`).")
@fixtures_option
def call(config: Path, tool: str, args: str, record: str | None,
         fixtures_dir: Path | None) -> None:
    """Call one tool through the full pipeline and print the result."""
    from facade.fixtures import FixtureError, fixture_path

    try:
        target = fixture_path(config, tool, record, fixtures_dir) if record is not None \
            else None
    except FixtureError as exc:
        raise click.BadParameter(str(exc), param_hint="--record") from None
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
    if target is not None:
        result = _record(facade, tool, arguments, target)
    else:
        from facade.fixtures import call_tool

        result = asyncio.run(call_tool(_server(facade), tool, arguments))
    if result.is_error:
        _fail("\n".join(getattr(c, "text", "") for c in result.content))
    if result.structured_content is not None:
        click.echo(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
    for block in result.content[1 if result.structured_content is not None else 0:]:
        click.echo(getattr(block, "text", ""))


def _record(facade: Facade, tool: str, arguments: dict[str, Any], target: Path) -> Any:
    """`call --record`: the call, made through a transport that keeps the answer."""
    from facade.fixtures import (
        FixtureError,
        RecordingTransport,
        call_tool,
        recorded_fixture,
        write_fixture,
    )

    definition = next(t for t in facade.tools if t.name == tool)
    backend = facade.backend_for(definition.api)
    transport = RecordingTransport(definition.max_response_bytes or backend.max_response_bytes)
    result = asyncio.run(call_tool(_server(facade, transport=transport), tool, arguments))
    operation = f"{definition.binding.method} {definition.binding.path}"
    try:
        fixture = recorded_fixture(tool, operation, arguments, transport, result,
                                   definition.shaper.redact_globs,
                                   error_bodies=backend.error_excerpt > 0)
    except FixtureError as exc:
        _fail(f"{target}: {exc}")
    try:
        write_fixture(target, fixture)
    except OSError as exc:
        _fail(f"{target}: cannot write the fixture: {exc.strerror or exc}")
    click.echo(f"recorded {target} (status {fixture.status}); `facade test` replays it",
               err=True)
    return result


@main.command(name="test")
@config_option
@click.option("--update", is_flag=True, help="Accept the current results as the golden ones.")
@fixtures_option
def replay(config: Path, update: bool, fixtures_dir: Path | None) -> None:
    """Replay the recorded fixtures through the current curation, offline, and compare
    each result with its golden one. Exit 1 on any difference (unless --update)."""
    from facade.fixtures import find_fixtures, replay_all, updated, write_fixture
    from facade.terminal import styled

    paths = find_fixtures(config, fixtures_dir)
    if not paths:
        _fail(f"no fixtures under {fixtures_dir or config.parent / 'fixtures'}; record one "
              "with `facade call TOOL --args JSON --record NAME`")
    facade = _load(config)
    replays = replay_all(facade, paths)
    color = styled(sys.stdout)
    failed = changed = 0
    for r in replays:
        where = os.path.relpath(r.path)
        if r.problem is not None:
            failed += 1
            click.echo(f"{where}: cannot replay: {r.problem}")
        elif r.ok:
            click.echo(f"{where}: ok")
        elif update:
            changed += 1
            write_fixture(r.path, updated(r))
            click.echo(f"{where}: golden result updated")
        else:
            failed += 1
            click.echo(f"{where}: the result differs from the golden one")
            for line in r.diff():
                fg = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1]) if color else None
                click.echo(click.style("  " + line, fg=fg))
    counts = [f"{len(replays) - failed - changed} ok"] + \
        [f"{n} {what}" for n, what in ((changed, "updated"), (failed, "failed")) if n]
    click.echo(f"{len(replays)} fixture(s): " + ", ".join(counts))
    if failed:
        sys.exit(1)


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
    _write_schema(output.parent / SCHEMA_FILE, force)


# The starter curation's first line points here, relative to itself:
# `# yaml-language-server: $schema=./schema/curation.schema.json`.
SCHEMA_FILE = Path("schema") / "curation.schema.json"


def schema_text() -> str:
    """The JSON Schema of curation.yaml, as committed in `schema/curation.schema.json`."""
    from facade.curation import curation_json_schema

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


@main.command()
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
    from facade.install import (
        HOSTS,
        SERVER_NAME,
        InstallError,
        env_notes,
        requirements,
        snippet,
    )
    from facade.install import install as merge_into

    if name is not None and not SERVER_NAME.match(name):
        raise click.BadParameter("letters, digits, '-', '_' and '.', at most 64",
                                 param_hint="'--name'")
    try:
        req = requirements(config)
    except LoadError as exc:
        _fail_load(exc)
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
        _fail_load(exc)
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
