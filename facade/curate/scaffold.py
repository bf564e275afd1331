"""`facade init`: a starter curation listing every operation of a spec, commented out.

The spec may be a URL: it is downloaded once (size-capped, with a timeout and at most a
few redirects) into `specs/` beside the curation, because a curation names a local file.
Files its relative `$ref`s name are downloaded too, from the same host, under the same caps
(`fetch_referenced`), and saved at the same relative places.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from facade.curate.outline import outline
from facade.loading.spec import load_spec

__all__ = ["FetchError", "fetch_referenced", "fetch_spec", "public_url", "spec_filename",
           "starter_curation"]

MAX_SPEC_BYTES = 64 * 1024 * 1024  # Stripe's and GitHub's specs are under 10 MB
MAX_REDIRECTS = 3
MAX_SPEC_FILES = 200  # a spec split over more files than this is not one to curate from a URL
_EXTERNAL_REF = re.compile(rb"""["']?\$ref["']?\s*:\s*["']?(?!#)""")
FETCH_TIMEOUT = 30.0


class FetchError(Exception):
    """The spec could not be downloaded; the message is one line, with no credentials."""


def public_url(url: str) -> str:
    """`url` without credentials or query string, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def spec_filename(url: str, body: bytes) -> str:
    """A file name for a downloaded spec: the URL's own, or `openapi.json`/`.yaml`."""
    name = Path(urlsplit(url).path).name
    if name.endswith((".json", ".yaml", ".yml")):
        return name
    return "openapi.json" if body.lstrip()[:1] in (b"{", b"[") else "openapi.yaml"


def fetch_spec(url: str, *, max_bytes: int | None = None, timeout: float | None = None,
               progress: Callable[[int, int | None], None] | None = None) -> bytes:
    """Download a spec over http(s), `MAX_SPEC_BYTES` and `FETCH_TIMEOUT` unless told.

    Raises:
        FetchError: with a one-line reason.
    """
    import httpx

    max_bytes = MAX_SPEC_BYTES if max_bytes is None else max_bytes
    timeout = FETCH_TIMEOUT if timeout is None else timeout
    shown = public_url(url)
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise FetchError(f"cannot fetch {shown}: not an http(s) URL")
    headers = {"Accept": "application/json, application/yaml;q=0.9, */*;q=0.5"}
    deadline = time.monotonic() + timeout  # httpx's timeouts are per read, not per download
    try:
        with httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS,
                          timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))) as client:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code >= 400:
                    raise FetchError(f"cannot fetch {shown}: HTTP {response.status_code} "
                                     f"{response.reason_phrase}".rstrip())
                declared = response.headers.get("content-length")
                total = int(declared) if declared and declared.isdigit() else None
                if total is not None and total > max_bytes:
                    raise FetchError(f"cannot fetch {shown}: {total} bytes is more than the "
                                     f"{max_bytes} allowed")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("deadline", request=response.request)
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"cannot fetch {shown}: more than the {max_bytes} "
                                         "bytes allowed")
                    chunks.append(chunk)
                    if progress is not None:
                        progress(len(chunk), total)
                return b"".join(chunks)
    except httpx.TooManyRedirects:
        raise FetchError(f"cannot fetch {shown}: more than {MAX_REDIRECTS} redirects") from None
    except httpx.TimeoutException:
        raise FetchError(f"cannot fetch {shown}: timed out after {timeout:g}s") from None
    except httpx.InvalidURL:
        raise FetchError(f"cannot fetch {shown}: invalid URL") from None
    except httpx.HTTPError as exc:
        reason = type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            reason = "cannot connect"
        raise FetchError(f"cannot fetch {shown}: {reason}") from None


def fetch_referenced(url: str, body: bytes, *, max_bytes: int | None = None,
                     fetch: Callable[[str, int], bytes] | None = None
                     ) -> list[tuple[str, str, bytes]]:
    """The files the spec at `url` (already downloaded: `body`) reaches through `$ref`s to
    other files, transitively: `(relative path, url, body)` each, the path relative to the
    root document's folder, where the loader will look for it.

    Only relative references on the same host, inside the root document's folder, are
    followed; everything together stays under `max_bytes` (`MAX_SPEC_BYTES`).

    Raises:
        FetchError: a reference that cannot be followed, or a download that fails.
    """
    budget = (MAX_SPEC_BYTES if max_bytes is None else max_bytes) - len(body)
    get = fetch or (lambda u, limit: fetch_spec(u, max_bytes=limit))
    root = urlsplit(url)
    folder = root.path.rsplit("/", 1)[0] + "/"
    found: dict[str, tuple[str, str, bytes]] = {}
    queue = [(url, body)]
    while queue:
        here, text = queue.pop(0)
        for ref in _file_refs(text):
            target = urljoin(here, ref)
            parts = urlsplit(target)
            where = f"{public_url(here)} refers to {ref!r}"
            if (parts.scheme, parts.netloc) != (root.scheme, root.netloc):
                raise FetchError(f"{where}, on another host; facade follows references on "
                                 f"{public_url(url)}'s host only (download the files and "
                                 "run init on the local copy)")
            if not parts.path.startswith(folder):
                raise FetchError(f"{where}, outside the folder of {public_url(url)} "
                                 "(download the files and run init on the local copy)")
            relative = parts.path[len(folder):]
            if relative in found or parts.path == root.path:
                continue
            if len(found) >= MAX_SPEC_FILES:
                raise FetchError(f"{public_url(url)} refers to more than {MAX_SPEC_FILES} "
                                 "files")
            if budget <= 0:
                raise FetchError(f"cannot fetch {public_url(target)}: the spec's files are "
                                 "more than the bytes allowed")
            data = get(target.split("#")[0], budget)
            budget -= len(data)
            found[relative] = (relative, target.split("#")[0], data)
            queue.append((target, data))
    return list(found.values())


def _file_refs(body: bytes) -> list[str]:
    """The file part of every `$ref` in a JSON or YAML document that names another file."""
    if not _EXTERNAL_REF.search(body):  # most specs are one file: skip parsing them again
        return []
    import yaml

    try:
        data = yaml.load(body, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return []  # the loader says what is wrong with it, once the starter is written
    refs: dict[str, None] = {}
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.split("#")[0]:
                refs[ref.split("#")[0]] = None
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return list(refs)


def _base_path(data: dict[str, object]) -> str:
    """The path of the spec's first server (`/v1` of `https://api.example.com/v1`), its
    variables at their defaults: the operations' paths are relative to it, so the
    starter's default base URL keeps it. "" when there is none or it is not a plain path."""
    servers = data.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return ""
    url, variables = servers[0].get("url"), servers[0].get("variables") or {}
    if not isinstance(url, str) or not isinstance(variables, dict):
        return ""
    for name, variable in variables.items():
        if isinstance(variable, dict) and isinstance(variable.get("default"), str):
            url = url.replace("{" + str(name) + "}", variable["default"])
    path = urlsplit(url).path if "://" in url else url.split("?")[0]
    path = "/" + path.strip("/") if path.strip("/") else ""
    return path if re.fullmatch(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*", path) else ""


# What a YAML reader refuses anywhere, comments included, and what ends a comment line
# (PyYAML breaks lines at NEL, LS and PS too): text from the spec must not hold them.
_NOT_ONE_LINE = re.compile("[^\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd"
                           "\U00010000-\U0010ffff]")


def _one_line(text: str) -> str:
    return _NOT_ONE_LINE.sub(" ", text)


def _yaml_string(text: str) -> str:
    return json.dumps(" ".join(_one_line(text).split())[:200], ensure_ascii=False)


def starter_curation(spec_path: Path, output: Path) -> str:
    """The text of a starter curation for `spec_path`, to be written at `output`.

    Each operation is a commented-out tool (name, `operation:`, `description:`) followed by
    comment lines one level deeper, with its parameters and the fields of its answer
    (`facade.curate.outline`): uncommenting the tool, even with an editor's toggle, leaves
    those as comments.
    """
    spec = load_spec(spec_path)
    relative = os.path.relpath(spec_path.resolve(), output.resolve().parent)
    operations = outline(spec)
    title = (spec.data.get("info") or {}).get("title") or "api"
    lines = [
        "# yaml-language-server: $schema=./schema/curation.schema.json",
        f"# Starter curation for {relative} ({len(operations)} operations).",
        "# Uncomment a FEW tools (3-10), give each a description an agent can act on,",
        "# then run `facade check` and `facade tools`. Under each tool, `# params` are the",
        "# names `params:` takes and `# response` the paths `response.include` takes.",
        "version: 1",
        f"spec: {json.dumps(relative)}",
        f"server: {{name: {_yaml_string(str(title))}}}",
        "backend:",
        f"  base_url: ${{BACKEND_URL:-http://127.0.0.1:8080{_base_path(spec.data)}}}",
        "  # auth: {bearer_env: BACKEND_TOKEN}",
        "read_only: true",
        "tools:",
    ]
    for op in operations:
        notes = [note for note, on in (("writes: needs read_only: false", op.writes),
                                       ("deprecated", op.deprecated)) if on]
        lines.append(f"  # {op.name}:" + (f"  # {'; '.join(notes)}" if notes else ""))
        lines.append(f"  #   operation: {json.dumps(op.key)}")
        if op.summary:
            lines.append(f"  #   description: {_yaml_string(op.summary)}")
        lines.extend(f"  #   # {_one_line(note)}" for note in op.notes)
    if not operations:
        lines.append("  # (the spec has no operations)")
    return "\n".join(lines) + "\n"
