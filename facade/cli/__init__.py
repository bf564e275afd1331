"""The `facade` command: the click group, with one module per group of commands.

    checking   check, build, tools          is the curation valid; what agents see
    locking    lock, diff                   drift of the spec under the curation
    calling    call, test, serve            one call, replayed fixtures, the server
    starting   init, schema, install, manifest

`common` holds what they share. This is the one place a `LoadError` is caught (in
`common.fail_load`): it is printed as `file:line:col: message` lines on stderr and the exit
code is 1. Usage errors exit 2. No traceback reaches a user.
"""

from __future__ import annotations

import click

from facade.cli.calling import call, replay, serve
from facade.cli.checking import build, check, tool_listing, tools
from facade.cli.locking import diff, lock
from facade.cli.starting import init, install, manifest, schema, schema_text
from facade.version import __version__

__all__ = ["main", "schema_text", "tool_listing"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facade")
def main() -> None:
    """Serve a few curated, read-only MCP tools in front of a REST API."""


for _command in (check, build, lock, diff, tools, call, replay, serve, init, schema, install,
                 manifest):
    main.add_command(_command)
