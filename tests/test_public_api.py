"""The public surface is small and pinned; load time stays free of server and network code."""

from __future__ import annotations

import json
import subprocess
import sys

import facade


def test_all_is_sorted_and_complete() -> None:
    assert facade.__all__ == sorted(facade.__all__)
    assert set(facade.__all__) == {"CurationError", "FacadeError", "LoadError", "SpecError",
                                   "__version__", "build_server", "load"}
    for name in facade.__all__:
        assert hasattr(facade, name), name


def test_load_time_imports_neither_fastmcp_nor_httpx() -> None:
    code = ("import sys, json, facade.loading.loader, facade.curate.scaffold; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    modules = set(json.loads(out))
    assert "facade" in modules
    assert not modules & {"fastmcp", "httpx", "mcp", "starlette", "uvicorn"}
