"""`facade manifest`: a `server.json` for the official MCP registry.

The registry describes a server by how to install it: here, the `facade-mcp` package from
PyPI run with `uvx` (`uvx facade-mcp==VERSION serve --config …`; the package installs a
`facade-mcp` command for that), over stdio, given a curation file, plus the environment variables the
curation reads (credentials marked secret). An HTTP deployment can be listed as a remote.
The format is https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json;
tests/data/ holds a copy, and the tests validate against it.
"""

from __future__ import annotations

import re
from typing import Any

from facade.curate.install import Requirements
from facade.version import DISTRIBUTION, __version__

__all__ = ["PLACEHOLDER_NAMESPACE", "SCHEMA_URL", "server_json"]

SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
PLACEHOLDER_NAMESPACE = "io.github.your-user"
DESCRIPTION_MAX = 100  # the registry's limit, in characters


def _clip(text: str, limit: int = DESCRIPTION_MAX) -> str:
    """`text` on one line, cut at a word boundary to fit `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def default_description(req: Requirements) -> str:
    """The first sentence of the server instructions, else what the tools are."""
    facade = req.facade
    if facade.instructions:
        first = re.split(r"(?<=[.!?])\s", " ".join(facade.instructions.split()), maxsplit=1)[0]
        if len(first) <= DESCRIPTION_MAX:
            return first
    kind = "read-only " if facade.read_only else ""
    return _clip(f"Curated {kind}MCP tools for {facade.name}: "
                 + ", ".join(t.name for t in facade.tools))


def server_json(req: Requirements, *, name: str | None = None, package: str = DISTRIBUTION,
                version: str = __version__, description: str | None = None,
                remote: str | None = None, remote_bearer: bool = False) -> dict[str, Any]:
    """The registry's `server.json` for this façade."""
    env = [{"name": v.name, "description": v.description, "isRequired": v.required,
            "isSecret": v.secret, **({"default": v.default} if v.default is not None else {})}
           for v in req.env]
    config_arg = {
        "type": "named", "name": "--config", "isRequired": True, "format": "filepath",
        "description": "The curation file (curation.yaml); its OpenAPI spec sits beside it.",
    }
    package_entry: dict[str, Any] = {
        "registryType": "pypi",
        "registryBaseUrl": "https://pypi.org",
        "identifier": package,
        "version": __version__,
        "runtimeHint": "uvx",
        "transport": {"type": "stdio"},
        "packageArguments": [{"type": "positional", "value": "serve"}, config_arg],
    }
    if env:
        package_entry["environmentVariables"] = env
    manifest: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "name": name or f"{PLACEHOLDER_NAMESPACE}/{req.slug}",
        "title": _clip(req.facade.name),
        "description": _clip(description) if description else default_description(req),
        "version": version,
        "packages": [package_entry],
    }
    if remote:
        transport: dict[str, Any] = {"type": "streamable-http", "url": remote}
        if remote_bearer:
            transport["headers"] = [{
                "name": "Authorization", "value": "Bearer {token}", "isRequired": True,
                "isSecret": True, "description": "Bearer token for the façade's endpoint.",
                "variables": {"token": {"isRequired": True, "isSecret": True,
                                        "description": "The token, without `Bearer `."}},
            }]
        manifest["remotes"] = [transport]
    return manifest
