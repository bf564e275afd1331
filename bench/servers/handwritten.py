"""FastMCP tools written by hand around the same two GETs as facade's bench curation, with
nothing else: no argument check beyond FastMCP's own, no shaping, no audit, no output
schema beyond `dict`. The least an MCP tool in front of this backend can cost.

    python bench/servers/handwritten.py BACKEND_URL --http PORT

serves them over streamable HTTP with FastMCP's own HTTP app (stateless, JSON responses,
no access log), one process; `build(http)` gives the server for in-memory use.
"""

from __future__ import annotations

import argparse
from typing import Any


def build(http: Any) -> Any:
    from fastmcp import FastMCP

    server: Any = FastMCP("hand-written")

    @server.tool
    async def get_item(sku: str) -> dict[str, Any]:
        """One item."""
        response = await http.get(f"items/{sku}")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    @server.tool
    async def list_items() -> dict[str, Any]:
        """All items."""
        response = await http.get("items")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    return server


def serve_http(server: Any, port: int) -> None:
    """FastMCP's own streamable HTTP app, as facade serves it: stateless, JSON responses."""
    server.run(transport="http", host="127.0.0.1", port=port, path="/mcp",
               json_response=True, stateless_http=True, show_banner=False,
               log_level="warning", uvicorn_config={"access_log": False})


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser()
    parser.add_argument("backend")
    parser.add_argument("--http", type=int, required=True, metavar="PORT")
    args = parser.parse_args()
    serve_http(build(httpx.AsyncClient(base_url=args.backend + "/")), args.http)


if __name__ == "__main__":
    main()
