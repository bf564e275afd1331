"""See the bundled example work: a real MCP client talks to `facade serve` over stdio.

Starts the example inventory backend on 127.0.0.1 (an ephemeral port), launches
`python -m facade serve --config curation.yaml` as an MCP stdio server, lists its tools
and calls two of them. Nothing leaves this machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from fastmcp import Client
from fastmcp.client.transports import StdioTransport

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import inventory_backend  # noqa: E402


async def main() -> None:
    os.environ.setdefault("INVENTORY_TOKEN", "demo-token")  # the backend checks it
    server, url = inventory_backend.start(0)
    env = {**os.environ, "INVENTORY_URL": url}
    transport = StdioTransport(command=sys.executable,
                               args=["-m", "facade", "serve", "--config",
                                     str(ROOT / "curation.yaml")], env=env, cwd=str(ROOT))
    async with Client(transport) as client:
        tools = await client.list_tools()
        print(f"{len(tools)} curated tools:")
        for tool in tools:
            args = ", ".join(tool.input_schema.get("properties", {}))
            print(f"  {tool.name}({args})  readOnly={tool.annotations.read_only_hint}")
        for name, arguments in [("get_item", {"sku": "SKU-1042"}),
                                ("list_items", {"in_stock": True, "limit": 2})]:
            result = await client.call_tool(name, arguments)
            print(f"\n{name}({json.dumps(arguments)}) →")
            print(json.dumps(result.structured_content, indent=2))
        bad = await client.call_tool("get_item", {"sku": "SKU-0"}, raise_on_error=False)
        print(f"\nget_item({{\"sku\": \"SKU-0\"}}) → error: {bad.content[0].text}")  # type: ignore[union-attr]
    server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
