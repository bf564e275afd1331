"""A fast loopback backend for the benchmarks: the API of bench/specs/calls.yaml.

`python bench/backend.py [PORT]` listens on 127.0.0.1 (an ephemeral port by default),
prints `http://127.0.0.1:PORT/v1` on stdout once it accepts connections, and answers
with precomputed bytes over HTTP/1.1 keep-alive, so that what a benchmark measures is the
client in front of it, not the backend:

- `GET /v1/items/{sku}` → one item (~0.5 KB);
- `GET /v1/items` → 500 items (~200 KB);
- anything else → 404.

stdlib asyncio only: no framework, no parsing beyond the request line and headers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

LIST_SIZE = 500


def item(i: int) -> dict[str, Any]:
    return {
        "id": 1000 + i, "sku": f"SKU-{1000 + i}", "name": f"Item number {i}",
        "description": "A perfectly ordinary item used to measure the cost of a call." if i % 3
        else None,
        "price": {"amount": round(9.5 + i * 0.25, 2), "currency": "EUR"},
        "stock": i % 17,
        "tags": [{"id": 1, "name": "tools"}, {"id": 2 + i % 5, "name": f"group-{i % 5}"}],
        "supplier": {"name": "Acme Tools", "contact": {"email": "sales@acme.example",
                                                       "phone": "+1-555-0100"}},
        "internal_cost": round(3.8 + i * 0.1, 2), "sync_token": f"tok-{i:06d}",
    }


def _response(status: str, body: bytes) -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


SMALL = _response("200 OK", json.dumps(item(42)).encode())
LARGE = _response("200 OK", json.dumps({"items": [item(i) for i in range(LIST_SIZE)],
                                        "next_cursor": None}).encode())
NOT_FOUND = _response("404 Not Found", b'{"error":"not found"}')


def answer(target: bytes) -> bytes:
    path = target.split(b"?", 1)[0]
    if path == b"/v1/items":
        return LARGE
    if path.startswith(b"/v1/items/") and path.count(b"/") == 3:
        return SMALL
    return NOT_FOUND


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].split(b" ")
            length = 0
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(answer(request_line[1] if len(request_line) > 1 else b"/"))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    except KeyboardInterrupt:
        pass
