"""A small inventory REST backend for the bundled example and the tests (stdlib only).

Run it with `python examples/inventory_backend.py [PORT]`; it listens on 127.0.0.1 and
serves the API described by specs/inventory.yaml under /v1. When INVENTORY_TOKEN is set,
requests must carry `Authorization: Bearer $INVENTORY_TOKEN`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SUPPLIER = {"name": "Acme Tools", "contact": {"email": "sales@acme.example", "phone": "+1-555-0100"}}
ITEMS: list[dict[str, Any]] = [
    {"id": 1042 + i, "sku": f"SKU-{1042 + i}", "name": name, "description": None,
     "price": {"amount": price, "currency": "EUR"}, "stock": stock,
     "tags": [{"id": 1, "name": "tools"}] + ([{"id": 2, "name": "sale"}] if i % 2 else []),
     "supplier": SUPPLIER, "internal_cost": round(price * 0.4, 2), "sync_token": f"tok-{i}"}
    for i, (name, price, stock) in enumerate([
        ("Cordless drill", 129.0, 14), ("Hammer", 19.5, 0), ("Tape measure", 9.9, 120),
        ("Spirit level", 24.0, 7), ("Screwdriver set", 32.0, 41)])
]
CATEGORIES = {
    1: {"id": 1, "name": "Tools", "parent": None},
    2: {"id": 2, "name": "Power tools", "parent": 1},
    3: {"id": 3, "name": "Drills", "parent": 2},
}


def _category(cid: int, with_parent: bool = True) -> dict[str, Any]:
    c = CATEGORIES[cid]
    parent = _category(c["parent"], True) if with_parent and c["parent"] else None
    children = [_category(k, False) for k, v in CATEGORIES.items() if v["parent"] == cid]
    return {"id": cid, "name": c["name"], "parent": parent, "children": children}


class Handler(BaseHTTPRequestHandler):
    server_version = "inventory/1.4"
    seen: list[dict[str, Any]] = []  # requests received, for tests to inspect

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.seen.append({"path": url.path, "query": query, "headers": dict(self.headers)})
        token = os.environ.get("INVENTORY_TOKEN")
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            return self._send(401, {"error": "bad token"})
        parts = [unquote(p) for p in url.path.split("/") if p]
        if parts[:1] != ["v1"]:
            return self._send(404, {"error": "not found"})
        parts = parts[1:]
        tenant = self.headers.get("X-Tenant")
        if parts[:1] in (["items"], ["reports"]) and not tenant:
            return self._send(400, {"error": "X-Tenant header is required"})
        if parts == ["items"]:
            items = ITEMS
            for tag in query.get("tag", []):
                items = [i for i in items if tag in [t["name"] for t in i["tags"]]]
            if query.get("in_stock") == ["true"]:
                items = [i for i in items if i["stock"] > 0]
            limit = int(query.get("limit", ["20"])[0])
            return self._send(200, {"items": items[:limit], "next_cursor": None})
        if len(parts) in (2, 3) and parts[0] == "items":
            item = next((i for i in ITEMS if i["sku"] == parts[1]), None)
            if item is None:
                return self._send(404, {"error": f"no item {parts[1]}", "secret": "db-password"})
            if len(parts) == 3 and parts[2] == "stock":
                return self._send(200, [{"warehouse": "north", "on_hand": item["stock"],
                                         "reserved": 1}, {"warehouse": "south", "on_hand": 3,
                                                          "reserved": 0}])
            return self._send(200, item)
        if len(parts) == 2 and parts[0] == "categories" and parts[1].isdigit():
            if int(parts[1]) not in CATEGORIES:
                return self._send(404, {"error": "no such category"})
            return self._send(200, _category(int(parts[1])))
        if parts == ["reports", "stock.csv"]:
            rows = "\n".join(f"{i['sku']},{i['stock']}" for i in ITEMS)
            return self._send(200, "sku,stock\n" + rows + "\n", "text/csv")
        return self._send(404, {"error": "not found"})


def start(port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start the backend on 127.0.0.1 in a daemon thread; return it and its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"inventory backend at http://127.0.0.1:{port}/v1", file=sys.stderr)
    server.serve_forever()
