"""`facade check`, `build` and `tools`: is the curation valid, and what will agents see."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from facade.cli.common import config_option, fail, fail_load, load_facade
from facade.errors import LoadError, Problem
from facade.loading.loader import load
from facade.tools import Facade

if TYPE_CHECKING:
    from facade.curate.drift import Drift

__all__ = ["build", "check", "tool_listing", "tools"]


@click.command()
@config_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors: exit 1 if any.")
@click.option("--max-tokens", type=click.IntRange(min=1), metavar="N",
              help="Exit 1 when tools/list is estimated at more than N tokens (bytes / 4).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]),
              default="text", show_default=True, help="text: lines for people; json: "
              "every problem as one JSON document; sarif: SARIF 2.1.0, for code scanning.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the json or sarif document to FILE instead of stdout; the text "
              "report then goes to the terminal as usual.")
def check(config: Path, strict: bool, max_tokens: int | None, fmt: str,
          output: Path | None) -> None:
    """Validate the curation against its spec; report every problem at once."""
    if output is not None and fmt == "text":
        raise click.UsageError("--output is for --format json or sarif")
    outcome = _run_check(config, strict, max_tokens)
    if fmt == "text" or output is not None:
        _print_check(outcome)
    if fmt != "text":
        _write_document(outcome, fmt, output)
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


@dataclass
class _Checked:
    """What `check` found, before it is printed as text or written as a document."""

    config: str
    error: LoadError | None = None
    facade: Facade | None = None
    warnings: list[Problem] = field(default_factory=list)
    drift: Drift | None = None
    failure: Problem | None = None  # a facade bug, or tools/list over --max-tokens
    enforced: list[str] = field(default_factory=list)  # the --strict and --max-tokens lines
    strict: bool = False
    exit_code: int = 0

    def problems(self) -> list[Problem]:
        found = [replace(p, file=p.file or self.error.file) for p in self.error.problems] \
            if self.error is not None else list(self.warnings)
        drift = self.drift.problems() if self.drift is not None else []
        return [*found, *drift, *([self.failure] if self.failure else [])]


def _run_check(config: Path, strict: bool, max_tokens: int | None) -> _Checked:
    from facade.curate.drift import check_drift

    try:
        facade = load(config)
    except LoadError as exc:
        # With a lock: what changed in the spec since, which may say why.
        return _Checked(str(config), error=exc, drift=check_drift(config),
                        exit_code=1)
    done = _Checked(facade.config_file, facade=facade, strict=strict,
                    warnings=[*facade.warnings, *_lint(config, facade)],
                    drift=check_drift(config))
    if done.drift is not None and done.drift.breaking:
        done.exit_code = 1
        return done
    done.failure = _check_schemas(facade)
    if done.failure is None:
        done.failure = _enforce(done, len(done.warnings) if strict else 0, max_tokens)
    if done.failure is not None or (strict and done.warnings):
        done.exit_code = 1
    return done


def _print_check(done: _Checked) -> None:
    """The text report: problems and warnings on stderr, then `ok` on stdout."""
    from facade.cli.terminal import print_lines

    drift = done.drift.lines() if done.drift is not None else []
    if done.error is not None:
        print_lines(sys.stderr, [*done.error.format().splitlines(), *drift,
                                 f"{len(done.error.problems)} problem(s) found."])
        return
    facade = done.facade
    assert facade is not None  # it loaded
    print_lines(sys.stderr, [w.format(facade.config_file) for w in done.warnings])
    print_lines(sys.stderr, drift)
    if done.drift is not None and done.drift.breaking:
        return
    for line in done.enforced:
        click.echo(line, err=True)
    if done.failure is not None:
        click.echo(done.failure.format(facade.config_file), err=True)
    if done.exit_code:
        return
    names = ", ".join(t.name for t in facade.tools)
    print_lines(sys.stdout, [f"{facade.config_file}: ok, {len(facade.tools)} tool(s) over "
                             f"{facade.spec_file}: {names}"], ok=True)


def _write_document(done: _Checked, fmt: str, output: Path | None) -> None:
    from facade.curate.reports import CheckResult, as_json, as_sarif

    result = CheckResult(done.config, done.problems(), done.exit_code, done.strict,
                         None if done.facade is None else [t.name for t in done.facade.tools])
    document = as_sarif(result) if fmt == "sarif" else as_json(result)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{output}: cannot write the report: {exc.strerror or exc}")


def _check_schemas(facade: Facade) -> Problem | None:
    """The generated schemas are valid JSON Schema 2020-12. Checked here, not at every
    start; a failure is a facade bug, reported as one problem rather than a traceback."""
    import jsonschema

    tools = [*facade.tools, *(r.tool for r in facade.resources)]
    for tool in tools:
        for kind, schema in (("input", tool.input_schema), ("output", tool.output_schema)):
            if schema is None:
                continue
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                return Problem(("tools", tool.name), f"facade built an invalid {kind} "
                               f"schema ({exc.message}); please report this with the spec",
                               code="internal/schema")
    return None


def _lint(config: Path, facade: Facade) -> list[Problem]:
    """The curator's lint (`facade.curate.curator_lint`) over a façade that loaded."""
    from facade.curate.curator_lint import lint_curation, lint_multi
    from facade.loading.curation import Curation, parse_any_curation
    from facade.loading.yamlsource import read_yaml

    try:
        doc = read_yaml(config)
        curation = parse_any_curation(doc)
        if isinstance(curation, Curation):
            return lint_curation(facade, curation, doc)
        return lint_multi(facade, curation, doc)
    except LoadError:  # the file changed since it loaded: the next check will say
        return []


def _enforce(done: _Checked, strict_warnings: int, max_tokens: int | None
             ) -> Problem | None:
    """`check --strict` and `check --max-tokens`: the lines to print, and tools/list over
    budget as a problem."""
    if strict_warnings:
        done.enforced.append(f"{strict_warnings} warning(s), which --strict treats as errors.")
    if max_tokens is None or done.facade is None:
        return None
    from facade.curate.budget import listing_budget

    facade = done.facade
    budget = listing_budget(facade.tools, tool_listing(facade))
    size = f"tools/list is ~{budget.tokens:,} tokens ({budget.bytes:,} bytes, estimated " \
        "as bytes / 4)"
    if budget.tokens <= max_tokens:
        done.enforced.append(f"{facade.config_file}: {size}, within --max-tokens "
                             f"{max_tokens:,}")
        return None
    largest = ", ".join(f"{t.name} ~{t.tokens:,}" for t in budget.largest())
    over = Problem((), f"{size}, over --max-tokens {max_tokens:,}; largest: {largest}",
                   hint="drop tools, or trim results with response.include",
                   file=facade.config_file, code="budget/max-tokens")
    return over


@click.command()
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it [default: $FACADE_ARTIFACT, or beside the curation: "
              "curation.yaml -> curation.artifact.json].")
def build(config: Path, output: Path | None) -> None:
    """Compile the curation into an artifact that serve, tools and call start from."""
    from facade.loading.artifact import artifact_path
    from facade.loading.artifact import build as build_artifact

    target = output or artifact_path(config)
    if target is None:
        raise click.UsageError("FACADE_ARTIFACT is 'off': pass --output PATH")
    try:
        result = build_artifact(config, target)
    except LoadError as exc:
        fail_load(exc)
    except OSError as exc:
        fail(f"{target}: cannot write the artifact: {exc.strerror or exc}")
    for warning in result.facade.warnings:
        click.echo(warning.format(result.facade.config_file), err=True)
    click.echo(f"{target}: {len(result.facade.tools)} tool(s), {result.bytes:,} bytes, keyed "
               f"by {result.files} file digest(s)")


def tool_listing(facade: Facade) -> list[dict[str, Any]]:
    """The tools exactly as an MCP client receives them from `tools/list`."""
    from facade.curate.budget import listing

    return listing(facade.tools)


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the exact tools/list JSON.")
@click.option("--budget", is_flag=True, help="Bytes and estimated tokens per tool and in "
              "total, beside the whole spec exposed uncurated (with --json: as JSON).")
def tools(config: Path, as_json: bool, budget: bool) -> None:
    """Show the tools an agent will see, and the size of the list."""
    facade = load_facade(config)
    listing = tool_listing(facade)
    if budget:
        _print_budget(config, facade, listing, as_json)
        return
    text = json.dumps({"tools": listing}, ensure_ascii=False, separators=(",", ":"))
    if as_json:
        click.echo(json.dumps({"tools": listing}, ensure_ascii=False, indent=2))
        click.echo(f"{len(text.encode())} bytes", err=True)
        return
    from facade.cli.terminal import Column, table

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
    from facade.cli.terminal import Column, status, table
    from facade.curate.budget import BYTES_PER_TOKEN, listing_budget, uncurated_budget

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
