"""facade: a few curated, read-only, well-described MCP tools in front of a REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.errors import CurationError, FacadeError, LoadError, SpecError
from facade.loader import load

__version__ = "0.1.0"

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
    from facade.server import build_server
else:

    def build_server(*args: Any, **kwargs: Any) -> Any:
        """Build the FastMCP server for a loaded façade (see `facade.server.build_server`)."""
        # Imported lazily: load time must not pull in fastmcp or httpx.
        from facade.server import build_server as build

        return build(*args, **kwargs)
