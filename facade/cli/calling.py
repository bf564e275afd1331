"""`facade call`, `test` and `serve`: tools called once, replayed offline, or served."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from facade.cli.common import (
    config_option,
    fail,
    fixtures_option,
    load_facade,
    log_options,
    log_stream,
    server_for,
)
from facade.tools import Facade

if TYPE_CHECKING:
    from facade.curate.conformance import Conformance
    from facade.curate.junit import Case
    from facade.loading.spec import OpenAPIDocument

__all__ = ["call", "replay", "serve"]


@click.command()
@config_option
@click.argument("tool")
@click.option("--args", "args", default="{}", show_default=True, help="Arguments as JSON.")
@click.option("--record", metavar="NAME", help="Also save the backend's answer and the "
              "result as a contract example, fixtures/TOOL/NAME.json (see `facade test`).")
@fixtures_option
@log_options
def call(config: Path, tool: str, args: str, record: str | None,
         fixtures_dir: Path | None, log_format: str | None, log_level: str) -> None:
    """Call one tool through the full pipeline and print the result."""
    with log_stream(log_format, log_level):
        _call(config, tool, args, record, fixtures_dir)


def _call(config: Path, tool: str, args: str, record: str | None,
          fixtures_dir: Path | None) -> None:
    from facade.curate.fixtures import FixtureError, fixture_path

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
    facade = load_facade(config)
    names = [t.name for t in facade.tools]
    if tool not in names:
        from facade.errors import did_you_mean
        hint = did_you_mean(tool, names)
        fail(f"unknown tool {tool!r}" + (f" ({hint})" if hint else f"; tools: {names}"))
    if target is not None:
        result = _record(facade, tool, arguments, target)
    else:
        from facade.curate.fixtures import call_tool

        result = asyncio.run(call_tool(server_for(facade), tool, arguments))
    if result.is_error:
        fail("\n".join(getattr(c, "text", "") for c in result.content))
    if result.structured_content is not None:
        click.echo(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
    for block in result.content[1 if result.structured_content is not None else 0:]:
        click.echo(getattr(block, "text", ""))


def _record(facade: Facade, tool: str, arguments: dict[str, Any], target: Path) -> Any:
    """`call --record`: the call, made through a transport that keeps the answer."""
    from facade.curate.fixtures import (
        FixtureError,
        RecordingTransport,
        call_tool,
        recorded_fixture,
        write_fixture,
    )

    definition = next(t for t in facade.tools if t.name == tool)
    backend = facade.backend_for(definition.api)
    transport = RecordingTransport(definition.max_response_bytes or backend.max_response_bytes)
    result = asyncio.run(call_tool(server_for(facade, transport=transport), tool, arguments))
    operation = f"{definition.binding.method} {definition.binding.path}"
    try:
        fixture = recorded_fixture(tool, operation, arguments, transport, result,
                                   definition.shaper.redact_globs,
                                   error_bodies=backend.error_excerpt > 0)
    except FixtureError as exc:
        fail(f"{target}: {exc}")
    try:
        write_fixture(target, fixture)
    except OSError as exc:
        fail(f"{target}: cannot write the fixture: {exc.strerror or exc}")
    click.echo(f"recorded {target} (status {fixture.status}); `facade test` replays it",
               err=True)
    return result


@click.command(name="test")
@config_option
@click.option("--update", is_flag=True, help="Accept the current results as the golden ones.")
@click.option("--suggest-overlay", "suggest", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an overlay that makes the spec match the recorded answers (in a "
              "multi-API curation one per API: fixes.yaml → fixes.<api>.yaml).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write the results as JUnit XML, for CI: a testsuite per curation "
              "(or API), a testcase per fixture.")
@fixtures_option
def replay(config: Path, update: bool, suggest: Path | None, junit: Path | None,
           fixtures_dir: Path | None) -> None:
    """Replay the recorded fixtures through the current curation, offline, and compare
    each result with its golden one. Exit 1 on any difference (unless --update). Also
    report where the recorded answers deviate from the documented response schema."""
    from facade.cli.terminal import styled
    from facade.curate.conformance import check_fixtures
    from facade.curate.fixtures import find_fixtures, replay_all, updated, write_fixture
    from facade.curate.junit import Case

    paths = find_fixtures(config, fixtures_dir)
    if not paths:
        fail(f"no fixtures under {fixtures_dir or config.parent / 'fixtures'}; record one "
              "with `facade call TOOL --args JSON --record NAME`")
    facade = load_facade(config)
    specs = _documents(config)
    replays = replay_all(facade, paths)
    checked = check_fixtures(facade, specs, paths)
    color = styled(sys.stdout)
    failed = changed = 0
    cases: list[Case] = []
    apis = {t.name: t.api for t in facade.tools}
    for r, c in zip(replays, checked, strict=True):
        where = os.path.relpath(r.path)
        tool = r.fixture.tool if r.fixture else None
        # The JUnit testsuite: the curation, or `curation.yaml/API` for a tool of one API.
        api = apis.get(tool or "")
        suite = f"{config.name}/{api}" if api else config.name
        case = Case(suite, tool or r.path.parent.name, r.path.stem, where,
                    out=[line.strip() for line in c.lines()],
                    properties={"deviations": str(len(c.deviations))})
        if r.problem is not None:
            failed += 1
            click.echo(f"{where}: cannot replay: {r.problem}")
            case = replace(case, error=f"cannot replay: {r.problem}")
        elif r.ok:
            click.echo(f"{where}: ok")
        elif update:
            changed += 1
            write_fixture(r.path, updated(r))
            click.echo(f"{where}: golden result updated")
            case.properties["updated"] = "true"
        else:
            failed += 1
            click.echo(f"{where}: the result differs from the golden one")
            diff = list(r.diff())
            for line in diff:
                fg = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1]) if color else None
                click.echo(click.style("  " + line, fg=fg))
            case = replace(case, failure="the result differs from the golden one",
                           details="\n".join(diff))
        if c.deviations:
            click.echo(f"{where}: the recorded answer deviates from the documented response "
                       f"schema in {len(c.deviations)} place(s):")
            for line in c.lines():
                click.echo(line)
        cases.append(case)
    if junit is not None:
        _write_junit(junit, config, cases)
    counts = [f"{len(replays) - failed - changed} ok"] + \
        [f"{n} {what}" for n, what in ((changed, "updated"), (failed, "failed")) if n]
    click.echo(f"{len(replays)} fixture(s): " + ", ".join(counts))
    if suggest is not None:
        _suggest(checked, specs, suggest)
    if failed:
        sys.exit(1)


def _write_junit(target: Path, config: Path, cases: list[Case]) -> None:
    from facade.curate.junit import write_junit

    try:
        write_junit(target, f"facade test {config.name}", cases)
    except OSError as exc:
        fail(f"{target}: cannot write the JUnit report: {exc.strerror or exc}")


def _documents(config: Path) -> dict[str, OpenAPIDocument]:
    """Each API's spec, overlays applied, for the deviation report."""
    from facade.cli.common import fail_load
    from facade.errors import LoadError
    from facade.loading.loader import documents

    try:
        return documents(config)
    except LoadError as exc:
        fail_load(exc)


def _suggest(checked: list[Conformance], specs: dict[str, OpenAPIDocument], target: Path
             ) -> None:
    """`test --suggest-overlay FILE`: write the overlay of each API with deviations."""
    from facade.curate.conformance import overlay_text, suggested_overlays

    suggestions = suggested_overlays(checked, specs)
    if not suggestions:
        click.echo("no deviations from the documented response schemas: no overlay "
                   "written", err=True)
        return
    for api, suggestion in suggestions.items():
        for line in suggestion.unreachable:
            click.echo(f"cannot suggest a fix for {line}", err=True)
        if suggestion.overlay is None:
            continue
        path = target.with_name(f"{target.stem}.{api}{target.suffix}") if api else target
        try:
            path.write_text(overlay_text(suggestion.overlay), encoding="utf-8")
        except OSError as exc:
            fail(f"{path}: cannot write the overlay: {exc.strerror or exc}")
        click.echo(f"wrote {path} ({len(suggestion.overlay['actions'])} action(s)); add it "
                   "to `overlays:` in the curation", err=True)


@click.command()
@config_option
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio",
              show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP bind address.")
@click.option("--port", default=8000, show_default=True, type=int, envvar="FACADE_PORT",
              help="HTTP port (also FACADE_PORT, which the image's HEALTHCHECK probes).")
@click.option("--allow-unauthenticated", is_flag=True, envvar="FACADE_ALLOW_UNAUTHENTICATED",
              help="Serve HTTP beyond localhost without server.auth, e.g. behind a gateway "
              "that authenticates (also FACADE_ALLOW_UNAUTHENTICATED=1).")
@click.option("--watch", is_flag=True, help="Reload the curation and spec when they "
              "change; an invalid version is rejected and the last good one keeps serving.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              envvar="FACADE_WORKERS", help="HTTP worker processes sharing the port, e.g. "
              "one per core (also FACADE_WORKERS).")
@log_options
def serve(config: Path, transport: str, host: str, port: int,
          allow_unauthenticated: bool, watch: bool, workers: int, log_format: str | None,
          log_level: str) -> None:
    """Serve the curated tools over stdio or streamable HTTP (at /mcp).

    Everything on stderr is one log stream (--log-format, --log-level); over stdio, stdout
    carries JSON-RPC only."""
    if transport == "stdio" and workers > 1:
        raise click.UsageError(f"--workers {workers} needs --transport http: over stdio one "
                               "client talks to one process")
    with log_stream(log_format, log_level, messages=True):
        _serve(config, transport, host, port, allow_unauthenticated, watch, workers)


def _serve(config: Path, transport: str, host: str, port: int, allow_unauthenticated: bool,
           watch: bool, workers: int) -> None:
    from facade.serve.tracing import start_tracing

    facade = load_facade(config)
    tracing = start_tracing(os.environ)  # only with the otel extra and OTEL_* asking
    try:
        if transport == "stdio":
            from facade.serve.observe import observers_for
            from facade.serve.process import serving
            from facade.serve.shared_limit import RedisMissing

            try:
                observer = observers_for(facade)
            except RedisMissing as exc:
                fail(f"{facade.config_file}: {exc}")
            server = server_for(facade, observer, watch=config if watch else None)
            with serving(asyncio_run=False):  # the start-up heap frozen, fewer collections
                server.run(transport="stdio", show_banner=False)
            return
        from facade.serve.http import ServeError, serve_http
        from facade.serve.workers import serve_workers

        try:
            if workers > 1:
                serve_workers(facade, host=host, port=port, workers=workers,
                              allow_unauthenticated=allow_unauthenticated,
                              watch=config if watch else None,
                              finish=None if tracing is None else tracing.shutdown)
            else:
                serve_http(facade, host=host, port=port,
                           allow_unauthenticated=allow_unauthenticated,
                           watch=config if watch else None)
        except ServeError as exc:
            fail(f"{facade.config_file}: {exc}")
    finally:
        if tracing is not None:
            tracing.shutdown()  # exports the spans still batched
