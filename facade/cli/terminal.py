"""What the CLI prints for people: color and progress on a terminal, plain text otherwise.

Color and progress appear only when the stream is a TTY and `NO_COLOR` is not set, so CI
logs and pipes get exactly the plain, grep-able lines (`curation.yaml:6:16: tools.… `).
`rich` is imported only when something is actually drawn.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Column", "console", "download_progress", "print_lines", "status", "styled", "table"]

_LOCATION = re.compile(r"^[^:\s]+(?::\d+:\d+)?:")
_HINT = re.compile(r" \([^()]*\)$")


def interactive(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def styled(stream: IO[str]) -> bool:
    """Whether to style `stream`: a terminal, and `NO_COLOR` unset (https://no-color.org)."""
    return interactive(stream) and not os.environ.get("NO_COLOR")


def console(stream: IO[str]) -> Console | None:
    """A rich console for `stream` when it is a terminal, else None (print plain text).

    With `NO_COLOR` it draws (spinners, tables) but emits no styles at all.
    """
    if not interactive(stream):
        return None
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=True, force_terminal=True,
                   color_system="auto" if styled(stream) else None)


def print_lines(stream: IO[str], lines: Sequence[str], *, ok: bool = False) -> None:
    """Problem lines (`file:line:col: path: message (hint)`), styled only on a terminal."""
    out = console(stream) if styled(stream) else None
    if out is None:
        for line in lines:
            stream.write(line + "\n")
        stream.flush()
        return
    from rich.text import Text

    for line in lines:
        text = Text(line)
        if ok:
            start = line.find(": ok,")
            if start >= 0:
                text.stylize("bold green", start + 2, start + 4)
        elif line.endswith("problem(s) found."):
            text.stylize("bold red")
        else:
            location = _LOCATION.match(line)
            if location:
                text.stylize("bold", 0, location.end())
            text.highlight_regex(r": warning:", "yellow")
            text.highlight_regex(_HINT.pattern, "dim")
        out.print(text)


class Column:
    """A table column: header and how it may shrink."""

    def __init__(self, header: str, *, wrap: bool = True,
                 justify: Literal["left", "right"] = "left", min_width: int | None = None) -> None:
        self.header, self.wrap, self.justify, self.min_width = header, wrap, justify, min_width


def table(stream: IO[str], columns: Sequence[Column], rows: Sequence[Sequence[str]],
          footer: str) -> None:
    """A compact table; plain characters and no color when `stream` is not a terminal."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    tty = interactive(stream)
    grid = Table(box=box.SIMPLE_HEAD if tty else box.ASCII2, show_edge=False,
                 header_style="bold", pad_edge=False)
    for col in columns:
        grid.add_column(col.header, no_wrap=not col.wrap, justify=col.justify,
                        overflow="fold", min_width=col.min_width)
    for row in rows:
        grid.add_row(*row)
    # Piped or in CI: no styles, and wide enough that a row stays on one line for grep.
    out = Console(file=stream, highlight=False, force_terminal=tty,
                  color_system="auto" if styled(stream) else None, width=None if tty else 200)
    out.print(grid)
    out.print(footer, style="dim")


@contextlib.contextmanager
def status(stream: IO[str], message: str) -> Iterator[Any]:
    """A spinner with `message` on a terminal; nothing otherwise."""
    out = console(stream)
    if out is None:
        yield None
        return
    with out.status(message):
        yield out


@contextlib.contextmanager
def download_progress(stream: IO[str], label: str) -> Iterator[Any]:
    """A byte counter for a download on a terminal; yields `advance(n, total)` or None."""
    out = console(stream)
    if out is None:
        yield None
        return
    from rich.progress import DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), DownloadColumn(), TransferSpeedColumn(),
                  console=out, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def advance(n: int, total: int | None) -> None:
            progress.update(task, advance=n, total=total)

        yield advance
