"""`facade init`: a starter curation listing every operation of a spec, commented out.

The spec may be a URL: it is downloaded once (size-capped, with a timeout and at most a
few redirects) into `specs/` beside the curation, because a curation names a local file.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from facade.loading.spec import load_spec
from facade.tools import tool_name_for, unique_tool_name

__all__ = ["FetchError", "fetch_spec", "public_url", "spec_filename", "starter_curation"]

MAX_SPEC_BYTES = 64 * 1024 * 1024  # Stripe's and GitHub's specs are under 10 MB
MAX_REDIRECTS = 3
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


def _yaml_string(text: str) -> str:
    return json.dumps(" ".join(text.split())[:200], ensure_ascii=False)


def starter_curation(spec_path: Path, output: Path) -> str:
    """The text of a starter curation for `spec_path`, to be written at `output`."""
    spec = load_spec(spec_path)
    relative = os.path.relpath(spec_path.resolve(), output.resolve().parent)
    refs = sorted(spec.by_label.values(),
                  key=lambda r: (r.method not in ("GET", "HEAD"), r.path, r.method))
    title = (spec.data.get("info") or {}).get("title") or "api"
    lines = [
        "# yaml-language-server: $schema=./schema/curation.schema.json",
        f"# Starter curation for {relative} ({len(refs)} operations).",
        "# Uncomment a FEW tools (3-10), give each a description an agent can act on,",
        "# then run `facade check` and `facade tools`.",
        "version: 1",
        f"spec: {json.dumps(relative)}",
        f"server: {{name: {_yaml_string(str(title))}}}",
        "backend:",
        f"  base_url: ${{BACKEND_URL:-http://127.0.0.1:8080{_base_path(spec.data)}}}",
        "  # auth: {bearer_env: BACKEND_TOKEN}",
        "read_only: true",
        "tools:",
    ]
    seen: set[str] = set()
    for ref in refs:
        raw = spec.data["paths"][ref.path].get(ref.method.lower(), {})
        summary = raw.get("summary") if isinstance(raw, dict) else None
        name = unique_tool_name(tool_name_for(ref.operation_id, ref.method, ref.path), seen)
        seen.add(name)
        key = ref.operation_id or ref.label
        note = "" if ref.method in ("GET", "HEAD") else "  # writes: needs read_only: false"
        lines.append(f"  # {name}:{note}")
        lines.append(f"  #   operation: {json.dumps(key)}")
        if isinstance(summary, str) and summary.strip():
            lines.append(f"  #   description: {_yaml_string(summary)}")
    if not refs:
        lines.append("  # (the spec has no operations)")
    return "\n".join(lines) + "\n"
