"""The promises the README makes about methods, through a real MCP client against a real
HTTP backend on 127.0.0.1 that records every request it receives, whatever its method:

- a tool that says it is read-only never sends anything but GET/HEAD, even when its binding
  was tampered with after load (the call-time guard in `CuratedTool._call`);
- the MCP annotations follow the method (readOnly, destructive, idempotent, openWorld);
- only idempotent methods are retried;
- TLS to an https backend is verified.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import ssl
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from facade.call.events import CallRecord, Observer
from facade.loading.loader import load
from facade.serve.server import build_server
from facade.tools import Facade

from .conftest import error_text, tool_json

pytestmark = pytest.mark.integration

SPEC = """
    openapi: 3.0.3
    info: {title: things, version: "1"}
    paths:
      /things/{id}:
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
        get:
          operationId: getThing
          responses:
            "200":
              description: ok
              content: {application/json: {schema: {type: object}}}
        put:
          operationId: replaceThing
          requestBody:
            content: {application/json: {schema: {type: object, properties: {name: {type: string}}}}}
          responses:
            "200":
              description: ok
              content: {application/json: {schema: {type: object}}}
        delete:
          operationId: deleteThing
          responses:
            "200":
              description: ok
              content: {application/json: {schema: {type: object}}}
      /things:
        post:
          operationId: createThing
          requestBody:
            content: {application/json: {schema: {type: object, properties: {name: {type: string}}}}}
          responses:
            "200":
              description: ok
              content: {application/json: {schema: {type: object}}}
"""


class Recording(ThreadingHTTPServer):
    """A backend that records (method, path) of every request and answers each with
    `status` and a small JSON object."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.daemon_threads = True
        self.requests: list[tuple[str, str]] = []
        self.status = 200
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


class _Handler(BaseHTTPRequestHandler):
    server: Recording

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.lock:
            self.server.requests.append((self.command, self.path))
        status = self.server.status
        body = json.dumps({"method": self.command}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _answer  # noqa: N815


@pytest.fixture
def backend() -> Iterator[Recording]:
    """A fresh recording backend per test: nothing is shared between tests."""
    server = Recording()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _facade(tmp_path: Path, url: str, tools: str, read_only: bool = True) -> Facade:
    (tmp_path / "things.yaml").write_text(textwrap.dedent(SPEC))
    config = tmp_path / "curation.yaml"
    config.write_text(textwrap.dedent(f"""
        version: 1
        spec: things.yaml
        read_only: {str(read_only).lower()}
        backend:
          base_url: {url}
          retries: {{attempts: 2, backoff: 0.01, max_backoff: 0.02}}
          circuit_breaker: {{failures: 100}}
        tools:
    """) + textwrap.indent(textwrap.dedent(tools), "  "))
    return load(config, environ={})


class Outcomes(Observer):
    def __init__(self) -> None:
        self.finished: list[CallRecord] = []

    def call_finished(self, record: CallRecord) -> None:
        self.finished.append(record)


async def test_a_read_only_tool_bound_to_post_is_refused_at_call_time(
        tmp_path: Path, backend: Recording) -> None:
    """The loader refuses such a tool; here it is made after load, bypassing the loader
    (as a bug or a tampered artifact would). The call must never reach the backend."""
    facade = _facade(tmp_path, backend.url, "get_thing: {operation: getThing}\n")
    [tool] = facade.tools
    assert tool.annotations["readOnlyHint"] is True
    tampered = dataclasses.replace(tool, binding=dataclasses.replace(tool.binding,
                                                                     method="POST"))
    facade = dataclasses.replace(facade, tools=(tampered,))
    outcomes = Outcomes()
    async with Client(build_server(facade, environ={}, observer=outcomes)) as client:
        [listed] = await client.list_tools()
        assert tool_json(listed)["annotations"]["readOnlyHint"] is True
        result = await client.call_tool("get_thing", {"id": "t1"}, raise_on_error=False)
        assert error_text(result) == ("Tool get_thing is read-only but bound to POST; "
                                      "refusing to call it")
    assert backend.requests == []
    assert [r.outcome for r in outcomes.finished] == ["refused"]
    # The untampered tool does reach the backend: the refusal is the guard's doing.
    async with Client(build_server(dataclasses.replace(facade, tools=(tool,)),
                                   environ={})) as client:
        result = await client.call_tool("get_thing", {"id": "t1"})
        assert result.structured_content == {"method": "GET"}
    assert backend.requests == [("GET", "/api/things/t1")]


READ_ONLY = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True,
             "openWorldHint": False}


async def test_annotations_of_a_read_only_facade(tmp_path: Path, backend: Recording) -> None:
    facade = _facade(tmp_path, backend.url, "get_thing: {operation: getThing}\n")
    async with Client(build_server(facade, environ={})) as client:
        listing = {t["name"]: t["annotations"] for t in map(tool_json,
                                                            await client.list_tools())}
    assert listing == {"get_thing": READ_ONLY}


async def test_annotations_follow_the_method_when_not_read_only(
        tmp_path: Path, backend: Recording) -> None:
    facade = _facade(tmp_path, backend.url, """
        get_thing: {operation: getThing}
        create_thing: {operation: createThing}
        replace_thing: {operation: replaceThing}
        delete_thing: {operation: deleteThing}
    """, read_only=False)
    async with Client(build_server(facade, environ={})) as client:
        listing = {t["name"]: t["annotations"] for t in map(tool_json,
                                                            await client.list_tools())}
    assert listing == {
        "get_thing": READ_ONLY,
        "create_thing": {"readOnlyHint": False, "destructiveHint": False,
                         "idempotentHint": False, "openWorldHint": False},
        "replace_thing": {"readOnlyHint": False, "destructiveHint": False,
                          "idempotentHint": True, "openWorldHint": False},
        "delete_thing": {"readOnlyHint": False, "destructiveHint": True,
                         "idempotentHint": True, "openWorldHint": False},
    }


async def test_only_idempotent_methods_are_retried(tmp_path: Path, backend: Recording) -> None:
    """`attempts: 2`: a PUT answered 503 is sent three times (the first request and two
    retries); a POST answered 503 is sent exactly once."""
    facade = _facade(tmp_path, backend.url, """
        create_thing: {operation: createThing}
        replace_thing: {operation: replaceThing}
    """, read_only=False)
    backend.status = 503
    async with Client(build_server(facade, environ={})) as client:
        posted = await client.call_tool("create_thing", {"name": "x"}, raise_on_error=False)
        assert posted.is_error
        assert backend.requests == [("POST", "/api/things")]
        put = await client.call_tool("replace_thing", {"id": "t1", "name": "x"},
                                     raise_on_error=False)
        assert put.is_error
    assert backend.requests == [("POST", "/api/things")] + [
        ("PUT", "/api/things/t1")] * 3


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no CA signed, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_an_https_backend_with_an_untrusted_certificate_is_never_sent_a_request(
        tmp_path: Path, backend: Recording) -> None:
    """TLS is verified: a backend whose certificate no trusted CA signed gets a handshake
    and nothing else, and the call is a tool error."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    backend.socket = context.wrap_socket(backend.socket, server_side=True)
    facade = _facade(tmp_path, backend.url.replace("http://", "https://"),
                     "get_thing: {operation: getThing}\n")
    async with Client(build_server(facade, environ={})) as client:
        result = await client.call_tool("get_thing", {"id": "t1"}, raise_on_error=False)
    assert error_text(result) == ("The backend for GET /things/{id} is unreachable; retry "
                                  "later or tell the operator")
    assert backend.requests == []
