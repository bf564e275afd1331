"""`facade init --spec URL`: download once, capped and timed, with one-line errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from facade.cli import main
from facade.curate import scaffold

SPEC = json.dumps({
    "openapi": "3.0.3",
    "info": {"title": "Pets", "version": "1"},
    "paths": {"/pets/{id}": {"get": {
        "operationId": "getPet", "summary": "One pet",
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}}}},
}).encode()


ROOT = Path(__file__).resolve().parent.parent
# The bundled example spec is split over three files, as served from /split/.
SPLIT = {name: (ROOT / "specs" / name).read_bytes() for name in [
    "inventory.yaml", "components/parameters.yaml", "components/schemas.yaml"]}
BAD_REFS = {  # the components are there; each root names one file that cannot be had
    **{name: body for name, body in SPLIT.items() if name.startswith("components/")},
    "elsewhere.yaml": SPLIT["inventory.yaml"].replace(
        b'"components/schemas.yaml#/Item"', b'"http://other.test/schemas.yaml#/Item"'),
    "above.yaml": SPLIT["inventory.yaml"].replace(
        b'"components/schemas.yaml#/Item"', b'"../shared/schemas.yaml#/Item"'),
    "missing.yaml": SPLIT["inventory.yaml"].replace(
        b'"components/schemas.yaml#/Item"', b'"components/nowhere.yaml#/Item"'),
}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        if "Content_Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if path.startswith("/split/") and path.removeprefix("/split/") in SPLIT:
            self._send(200, SPLIT[path.removeprefix("/split/")])
        elif path.startswith("/bad-refs/") and path.removeprefix("/bad-refs/") in BAD_REFS:
            self._send(200, BAD_REFS[path.removeprefix("/bad-refs/")])
        elif path in ("/openapi.json", "/docs/spec"):
            self._send(200, SPEC)
        elif path.startswith("/hop/"):
            n = int(path.rsplit("/", 1)[1])
            self._send(302, Location="/openapi.json" if n == 0 else f"/hop/{n - 1}")
        elif path == "/big":
            self._send(200, b"x" * 2048)
        elif path == "/endless":  # no Content-Length: the cap applies while reading
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 4096)
        elif path == "/slow":
            time.sleep(1.5)
            self._send(200, SPEC)
        elif path == "/not-a-spec.json":
            self._send(200, b'{"hello": "world"}')
        else:
            self._send(404, b"secret backend page")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # The client hangs up early on purpose (too big, too slow); socketserver would
        # print that to whatever sys.stderr is at the time, another test's CliRunner.
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def init(tmp_path: Path, url: str, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["init", "--spec", url, "-o",
                                       str(tmp_path / "curation.yaml"), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("path", "saved"), [("/openapi.json", "openapi.json"),
                                             ("/docs/spec", "openapi.json"),
                                             ("/hop/2", "openapi.json")],
                         ids=["named", "unnamed", "redirected"])
def test_downloads_into_specs_and_writes_the_starter(
        tmp_path: Path, server: str, path: str, saved: str) -> None:
    code, _, err = init(tmp_path, server + path)
    assert code == 0, err
    assert (tmp_path / "specs" / saved).read_bytes() == SPEC
    text = (tmp_path / "curation.yaml").read_text()
    assert f'spec: "specs/{saved}"' in text and '"getPet"' in text
    assert err.splitlines() == [
        f"downloaded {server}{path} to {tmp_path / 'specs' / saved} ({len(SPEC)} bytes)",
        f"wrote {tmp_path / 'curation.yaml'}: uncomment a few tools, then run `facade check`",
        f"wrote {tmp_path / 'schema' / 'curation.schema.json'}: completion and checks for "
        "curation.yaml in editors"]


@pytest.mark.parametrize(("path", "reason"), [
    ("/missing", "HTTP 404 Not Found"),
    ("/hop/5", "more than 3 redirects"),
    ("/big", "2048 bytes is more than the 1000 allowed"),
    ("/endless", "more than the 1000 bytes allowed"),
    ("/slow", "timed out after 0.5s"),
], ids=["404", "redirect-loop", "too-big", "too-big-streamed", "timeout"])
def test_failures_are_one_line_and_write_nothing(
        tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch, path: str,
        reason: str) -> None:
    monkeypatch.setattr(scaffold, "MAX_SPEC_BYTES", 1000)
    monkeypatch.setattr(scaffold, "FETCH_TIMEOUT", 0.5)
    code, out, err = init(tmp_path, server + path)
    assert code == 1 and out == ""
    assert err == f"cannot fetch {server}{path}: {reason}\n"
    assert list(tmp_path.iterdir()) == []


def test_unreachable_host(tmp_path: Path) -> None:
    code, _, err = init(tmp_path, "http://127.0.0.1:9/openapi.json")
    assert code == 1 and err == "cannot fetch http://127.0.0.1:9/openapi.json: cannot connect\n"


def test_credentials_and_query_never_reach_the_output(tmp_path: Path, server: str) -> None:
    host = server.removeprefix("http://")
    code, _, err = init(tmp_path, f"http://user:pa55word@{host}/missing?token=abc123")
    assert code == 1
    assert err == f"cannot fetch {server}/missing: HTTP 404 Not Found\n"
    assert "pa55word" not in err and "abc123" not in err and "secret backend" not in err


def test_a_download_that_is_not_a_spec_is_removed(tmp_path: Path, server: str) -> None:
    code, _, err = init(tmp_path, server + "/not-a-spec.json")
    assert code == 1 and "not an OpenAPI document" in err
    assert not (tmp_path / "specs" / "not-a-spec.json").exists()
    assert not (tmp_path / "curation.yaml").exists()


def test_an_existing_spec_file_is_kept_unless_forced(tmp_path: Path, server: str) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "openapi.json").write_text("mine")
    code, _, err = init(tmp_path, server + "/openapi.json")
    assert code == 1 and "already exists; pass --force" in err
    assert (tmp_path / "specs" / "openapi.json").read_text() == "mine"
    assert init(tmp_path, server + "/openapi.json", "--force")[0] == 0
    assert (tmp_path / "specs" / "openapi.json").read_bytes() == SPEC


def test_a_missing_local_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = init(tmp_path, str(tmp_path / "nope.yaml"))
    assert code == 2 and "does not exist" in err


def test_a_spec_split_over_files_is_downloaded_whole(tmp_path: Path, server: str) -> None:
    """The files its relative `$ref`s name are fetched from the same host and saved at the
    same relative places; the starter then loads and checks."""
    code, _, err = init(tmp_path, server + "/split/inventory.yaml")
    assert code == 0, err
    specs = tmp_path / "specs"
    for name, body in SPLIT.items():
        assert (specs / name).read_bytes() == body
    assert err.splitlines()[:3] == [
        f"downloaded {server}/split/{name} to {specs / name} ({len(SPLIT[name])} bytes)"
        for name in ["inventory.yaml", "components/parameters.yaml",
                     "components/schemas.yaml"]]
    config = tmp_path / "curation.yaml"
    config.write_text(config.read_text().replace(
        '  # get_category:\n  #   operation: "getCategory"\n',
        '  get_category:\n    operation: "getCategory"\n'))
    checked = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith(f"{config}: ok, 1 tool(s)")


@pytest.mark.parametrize(("name", "reason"), [
    ("elsewhere.yaml", "refers to 'http://other.test/schemas.yaml', on another host; facade "
     "follows references on {server}/bad-refs/elsewhere.yaml's host only (download the "
     "files and run init on the local copy)"),
    ("above.yaml", "refers to '../shared/schemas.yaml', outside the folder of "
     "{server}/bad-refs/above.yaml (download the files and run init on the local copy)"),
], ids=["other-host", "outside-the-folder"])
def test_references_that_cannot_be_followed_are_refused(tmp_path: Path, server: str,
                                                        name: str, reason: str) -> None:
    code, out, err = init(tmp_path, f"{server}/bad-refs/{name}")
    assert (code, out) == (1, "")
    assert err == f"{server}/bad-refs/{name} {reason.format(server=server)}\n"
    assert list(tmp_path.iterdir()) == []


def test_a_referenced_file_that_fails_to_download_writes_nothing(tmp_path: Path,
                                                                  server: str) -> None:
    code, _, err = init(tmp_path, f"{server}/bad-refs/missing.yaml")
    assert code == 1
    assert err == (f"cannot fetch {server}/bad-refs/components/nowhere.yaml: HTTP 404 Not "
                   "Found\n")
    assert list(tmp_path.iterdir()) == []


def test_the_caps_hold_for_all_the_files_together(tmp_path: Path, server: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = len(SPLIT["inventory.yaml"])
    monkeypatch.setattr(scaffold, "MAX_SPEC_BYTES", root + 100)
    code, _, err = init(tmp_path, server + "/split/inventory.yaml")
    assert code == 1
    assert err == (f"cannot fetch {server}/split/components/parameters.yaml: "
                   f"{len(SPLIT['components/parameters.yaml'])} bytes is more than the 100 "
                   "allowed\n")
    assert list(tmp_path.iterdir()) == []
