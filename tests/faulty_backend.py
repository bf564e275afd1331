"""A backend on 127.0.0.1 that misbehaves on command, for the resilience tests.

`GET /api/b/{mode}` does what `mode` says; query parameters tune it (`delay`, `fail`,
`status`, `after`, `n`, `key`). Every request is recorded in `FaultyHandler.seen` as
(mode, query, headers). Each behaviour ends by itself: slow and trickling answers are
bounded by `delay`, and the server is shut down by the fixture.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SECRET_IN_ERROR = "db-password=hunter2"
GZIP_BOMB = gzip.compress(b" " * (20 * 1024 * 1024), compresslevel=9)  # 20 MiB → ~20 KB


class FaultyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]] = []
    hits: Counter[str] = Counter()
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, **headers: str) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path.removeprefix("/api")  # the façade's base URL ends in /api
        parts = path.split("/")
        mode = unquote(parts[2]) if len(parts) > 2 and parts[1] == "b" else path
        with self.lock:
            self.seen.append({"mode": mode, "path": url.path, "raw_path": self.path,
                              "query": parse_qs(url.query), "headers": dict(self.headers)})
            key = f"{mode}:{query.get('key', '')}"
            self.hits[key] += 1
            hit = self.hits[key]
        handler = getattr(self, "mode_" + mode.replace("-", "_"), None)
        if handler is None:
            self._json(200, {"mode": mode, "query": query})
        else:
            handler(query, hit)

    # --- behaviours -------------------------------------------------------------------

    def mode_ok(self, q: dict[str, str], hit: int) -> None:
        self._json(200, {"ok": True, "hit": hit})

    def mode_echo(self, q: dict[str, str], hit: int) -> None:
        self._json(200, {"path": self.path, "headers": dict(self.headers)})

    def mode_setcookie(self, q: dict[str, str], hit: int) -> None:
        self._json(200, {"ok": True}, **{"Set-Cookie": "session=from-backend; Path=/"})

    def mode_slow(self, q: dict[str, str], hit: int) -> None:
        time.sleep(float(q.get("delay", "2")))
        self._json(200, {"ok": True})

    def mode_trickle(self, q: dict[str, str], hit: int) -> None:
        """Headers at once, then one byte every 0.1 s for `delay` seconds: every read
        timeout is met, only a deadline stops it."""
        body = b'{"pad": "' + b"x" * 1000 + b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        end = time.monotonic() + float(q.get("delay", "3"))
        for byte in body:
            if time.monotonic() > end:
                break
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.1)

    def mode_huge(self, q: dict[str, str], hit: int) -> None:
        n = int(q.get("n", str(4 * 1024 * 1024)))
        self._send(200, b'{"pad": "' + b"x" * n + b'"}')

    def mode_gzipbomb(self, q: dict[str, str], hit: int) -> None:
        self._send(200, GZIP_BOMB, headers={"Content-Encoding": "gzip"})

    def mode_flaky(self, q: dict[str, str], hit: int) -> None:
        """Fails `fail` times with `status` (per `key`), then answers 200."""
        if hit <= int(q.get("fail", "1")):
            headers = {"Retry-After": q["after"]} if "after" in q else {}
            self._json(int(q.get("status", "503")), {"error": "try again"}, **headers)
        else:
            self._json(200, {"ok": True, "hit": hit})

    def mode_ratelimit(self, q: dict[str, str], hit: int) -> None:
        after = q.get("after", "120")
        if after == "date":
            after = email.utils.formatdate(time.time() + 120, usegmt=True)
        self._json(429, {"error": "slow down"}, **{"Retry-After": after})

    def mode_status(self, q: dict[str, str], hit: int) -> None:
        self._json(int(q.get("status", "500")), {
            "error": "boom", "detail": SECRET_IN_ERROR, "internal_cost": 12.5,
            "auth": self.headers.get("Authorization", "")})

    def mode_reset(self, q: dict[str, str], hit: int) -> None:
        """Close the connection with a TCP reset, no answer."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def mode_redirect(self, q: dict[str, str], hit: int) -> None:
        self._send(302, b"", headers={"Location": "http://127.0.0.1:1/elsewhere"})

    def mode_html(self, q: dict[str, str], hit: int) -> None:
        self._send(200, b"<html>login</html>", content_type="text/html")

    def mode_binary(self, q: dict[str, str], hit: int) -> None:
        self._send(200, b"\x00\x01\x02", content_type="application/octet-stream")

    def mode_deep(self, q: dict[str, str], hit: int) -> None:
        depth = int(q.get("n", "100000"))
        self._send(200, b"[" * depth + b"]" * depth)

    def mode_many(self, q: dict[str, str], hit: int) -> None:
        n = int(q.get("n", "300000"))
        self._send(200, b"[" + b",".join([b"1"] * n) + b"]")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up (timeouts, caps) break pipes on purpose here


def start() -> tuple[ThreadingHTTPServer, str]:
    server = _Server(("127.0.0.1", 0), FaultyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
