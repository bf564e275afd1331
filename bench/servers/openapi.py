"""FastMCP's own OpenAPI server (`FastMCP.from_openapi`), the alternative facade is measured
against.

    python bench/servers/openapi.py SPEC --ops "GET /a,GET /b/{id}" [--backend URL]
    python bench/servers/openapi.py SPEC --all --measure
    python bench/servers/openapi.py SPEC --ops "GET /b/{id}" --backend URL --http PORT

`--ops` keeps exactly those operations with route maps (one `RouteMap` per operation, then
a catch-all `EXCLUDE`); `--all` exposes the whole spec. The client is an `httpx2`
AsyncClient, as fastmcp 4.1 wants. `--measure` builds the server, lists its tools
in memory and prints one JSON line (seconds, tools, tools/list bytes, peak RSS) instead of
serving. `--http PORT` serves over streamable HTTP (FastMCP's own app, stateless, JSON
responses) instead of stdio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import parse  # noqa: E402


def route_maps(labels: list[str]) -> list[Any]:
    from fastmcp.server.providers.openapi import MCPType, RouteMap

    maps = []
    for label in labels:
        method, _, path = label.partition(" ")
        maps.append(RouteMap(methods=[method.upper()], pattern=rf"^{re.escape(path)}$",
                             mcp_type=MCPType.TOOL))
    return [*maps, RouteMap(mcp_type=MCPType.EXCLUDE)]


def build(spec_file: Path, labels: list[str] | None, backend: str) -> Any:
    import httpx2
    from fastmcp import FastMCP

    spec = parse(spec_file)
    client = httpx2.AsyncClient(base_url=backend, timeout=10)
    maps = route_maps(labels) if labels is not None else None
    return FastMCP.from_openapi(spec, client=client, route_maps=maps, name="fastmcp-openapi")


async def measure(server: Any) -> dict[str, Any]:
    from fastmcp import Client

    async with Client(server) as client:
        tools = await client.list_tools()
    listing = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]
    return {"tools": len(listing),
            "bytes": len(json.dumps({"tools": listing}, separators=(",", ":")).encode())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec", type=Path)
    parser.add_argument("--ops", help="comma-separated 'METHOD /path' labels to keep")
    parser.add_argument("--all", action="store_true", help="expose every operation")
    parser.add_argument("--backend", default="http://127.0.0.1:9")
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--http", type=int, metavar="PORT")
    args = parser.parse_args()
    labels = None if args.all else [s for s in (args.ops or "").split(",") if s]
    started = time.perf_counter()
    server = build(args.spec, labels, args.backend)
    if args.http is not None:
        from handwritten import serve_http

        serve_http(server, args.http)
        return
    if not args.measure:
        server.run(transport="stdio", show_banner=False)
        return
    result = asyncio.run(measure(server))
    result["seconds"] = time.perf_counter() - started
    status = Path("/proc/self/status").read_text()
    result["peak_rss_kb"] = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
