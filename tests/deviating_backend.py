"""A backend on 127.0.0.1 that answers the way real services do, not the way they document.

It serves tests/data/deviating/openapi.yaml: `GET /models/{case}`, `/models?case=`,
`/users/{case}`, `/sizes/{case}` and `/tags/{case}`. Each `case` of `CASES` deviates
from the documented `Model` in one common way; `ok` conforms. A few cases are not the
documented JSON at all (`html`, `empty`, `array`).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MODEL: dict[str, Any] = {
    "id": "gpt-x", "object": "model", "created": 1700000000, "owned_by": "system",
    "score": 0.5, "released": "2024-05-13T10:00:00Z", "permissions": {"read": True},
    "aliases": ["x"], "limits": {"rpm": 60}, "secret_weights": "w-hidden-0042",
}

# case → (changes to MODEL, the deviation facade reports: path, kind). None deletes a key.
CASES: dict[str, tuple[dict[str, Any], tuple[str, str]]] = {
    "null_string": ({"owned_by": None}, ("owned_by", "null")),
    "numeric_string_integer": ({"created": "42"}, ("created", "type")),
    "float_integer": ({"created": 1.5}, ("created", "type")),
    "numeric_string_number": ({"score": "0.5"}, ("score", "type")),
    "number_for_string": ({"id": 42}, ("id", "type")),
    "unlisted_enum": ({"object": "engine"}, ("object", "enum")),
    "bad_format": ({"released": "last tuesday"}, ("released", "format")),
    "missing_required": ({"owned_by": ...}, ("owned_by", "missing_required")),
    "extra_property": ({"limits": {"rpm": 60, "tpm": 9000}}, ("limits", "extra_property")),
    "null_object": ({"permissions": None}, ("permissions", "null")),
    "null_array": ({"aliases": None}, ("aliases", "null")),
}


def model(case: str) -> dict[str, Any]:
    """The model the backend sends for `case`."""
    changes = CASES[case][0] if case in CASES else {}
    answer = {**MODEL, **changes}
    return {k: v for k, v in answer.items() if v is not ...}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        case = parts[1] if len(parts) > 1 else parse_qs(url.query).get("case", ["ok"])[0]
        if case == "html":
            return self._send(b"<html><body>Service temporarily unavailable</body></html>",
                              "text/html; charset=utf-8")
        if case == "empty":
            return self._send(b"")
        kind = parts[0]
        if kind == "models" and len(parts) == 1:
            answer: Any = {"object": "list", "data": [model("ok"), model(case), model("ok")]}
        elif kind == "models":
            answer = [model("ok")] if case == "array" else model(case)
        elif kind == "users":
            answer = {"login": "octocat", "id": 1, "pushed_at": None} if case == "null" \
                else {"login": "octocat", "id": 1, "pushed_at": "2011-01-26T19:06:43Z"}
        elif kind == "sizes":
            answer = {"slug": "s-1vcpu-1gb", "price_monthly": "5.00", "price_hourly": 0.00744,
                      "regions": ["ams3"], "links": {}}
        else:
            answer = ["a", 2, None] if case == "mixed" else ["a", "b"]
        self._send(json.dumps(answer).encode())


def start(port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve on 127.0.0.1 (`port` 0: any free one) in a daemon thread; the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
