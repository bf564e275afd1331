"""Shared pieces of the hostile-input and faulty-backend tests: a façade over
tests/data/faulty/openapi.yaml, built with backend settings of the test's choosing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from fastmcp import Client

from facade.loading.loader import load
from facade.serve.server import build_server
from facade.tools import Facade

SPEC = Path(__file__).resolve().parent / "data" / "faulty" / "openapi.yaml"
TOKEN = "faulty-backend-secret-7f3a"
ENV = {"FAULTY_TOKEN": TOKEN}


def write_facade(tmp_path: Path, url: str, *, tools: dict[str, Any] | None = None,
                 **backend: Any) -> Path:
    curation = {
        "version": 1,
        "spec": str(SPEC),
        "backend": {
            "base_url": f"{url}/api",
            "timeout": 3,
            "auth": {"bearer_env": "FAULTY_TOKEN"},
            "headers": {"X-Static": "from-operator"},
            "retries": {"attempts": 2, "backoff": 0.01, "max_backoff": 0.05},
            **backend,
        },
        "redact": ["internal_cost", "*_token"],
        "tools": tools or {
            "behave": {"operation": "behave"},
            "get_item": {"operation": "getItem", "params": {"tenant": {"value": "acme"}}},
        },
    }
    path = tmp_path / "curation.yaml"
    path.write_text(yaml.safe_dump(curation, sort_keys=False))
    return path


def build(tmp_path: Path, url: str, **kwargs: Any) -> tuple[Facade, Any]:
    facade = load(write_facade(tmp_path, url, **kwargs), environ=dict(ENV))
    return facade, build_server(facade, environ=ENV)


@contextlib.asynccontextmanager
async def client_for(tmp_path: Path, url: str, **kwargs: Any) -> AsyncIterator[Client[Any]]:
    _, server = build(tmp_path, url, **kwargs)
    async with Client(server) as client:
        yield client


def error_of(result: Any) -> str:
    assert result.is_error, f"expected an error, got {result.structured_content!r}"
    return "\n".join(getattr(block, "text", "") for block in result.content)
