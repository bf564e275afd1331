"""The floor: a FastMCP server that only parses the spec file and registers 10 trivial tools.

`python bench/servers/floor.py SPEC` serves over stdio. Nothing a façade could skip is done:
the spec is read once (JSON, or YAML with libyaml's loader, as facade reads it) and kept,
the tools echo their argument.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from fastmcp import FastMCP

TOOLS = 10


def parse(path: Path) -> object:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def main() -> None:
    spec = parse(Path(sys.argv[1]))
    server: FastMCP = FastMCP("floor", instructions=f"{len(str(type(spec)))}")
    for i in range(TOOLS):
        def echo(text: str = "") -> str:
            """Return the text."""
            return text

        server.tool(echo, name=f"tool_{i}")
    server.run(transport="stdio", show_banner=False)


if __name__ == "__main__":
    main()
