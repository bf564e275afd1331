"""facade: a few curated, read-only, well-described MCP tools in front of a REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.errors import CurationError, FacadeError, LoadError, SpecError
from facade.loading.loader import load
from facade.version import __version__

__all__ = [
    "CurationError",
    "FacadeError",
    "LoadError",
    "SpecError",
    "__version__",
    "build_server",
    "load",
]

if TYPE_CHECKING:
    from facade.serve.server import build_server
else:

    def build_server(*args: Any, **kwargs: Any) -> Any:
        """Build the FastMCP server for a loaded façade (see `facade.serve.server.build_server`)."""
        # Imported lazily: load time must not pull in fastmcp or httpx.
        from facade.serve.server import build_server as build

        return build(*args, **kwargs)
