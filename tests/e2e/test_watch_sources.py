"""`facade serve --watch` watches every spec file the façade was built from, not only the
curation: an edit to a file reached through a `$ref` is swapped in. Started from a
compiled artifact too, whose spec files the artifact records (no second load at start)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.client import Client as SDKClient
from mcp.client.stdio import stdio_client

from .conftest import ROOT, child_env

pytestmark = pytest.mark.integration

OLD = "sku: {type: string, description: Stock keeping unit.}"
NEW = "sku: {type: string, description: The item's stock keeping unit.}"


def _sku_description(tool: Any) -> Any:
    """The description of `sku` in get_item's output schema."""
    return (tool.output_schema or {}).get("properties", {}).get("sku", {}).get("description")


@pytest.mark.parametrize("from_artifact", [False, True], ids=["from-spec", "from-artifact"])
async def test_an_edit_to_a_referenced_spec_file_is_swapped_in(
        tmp_path: Path, backend_url: str, from_artifact: bool) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    config = tmp_path / "curation.yaml"
    config.write_text((ROOT / "curation.yaml").read_text())
    env = child_env(backend_url)
    if from_artifact:
        built = subprocess.run([sys.executable, "-m", "facade", "build", "--config",
                                str(config)], env=env, cwd=tmp_path, capture_output=True,
                               text=True, timeout=60)
        assert built.returncode == 0, built.stderr
        artifact = json.loads((tmp_path / "curation.artifact.json").read_text())
        assert "specs/components/schemas.yaml" in {s["path"] for s in artifact["spec"]}
    else:
        env = {**env, "FACADE_ARTIFACT": "off"}
    schemas = tmp_path / "specs" / "components" / "schemas.yaml"
    assert OLD in schemas.read_text()
    log = tmp_path / "stderr.txt"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "facade", "serve", "--watch", "--config", str(config)],
        env=env, cwd=str(tmp_path))
    with log.open("w") as errlog:
        async with SDKClient(stdio_client(params, errlog=errlog), mode="legacy") as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert _sku_description(tools["get_item"]) == "Stock keeping unit."
            schemas.write_text(schemas.read_text().replace(OLD, NEW))
            # Touching the file's time as well: a same-second write of the same size
            # must not hide the edit from the watcher on coarse-grained file systems.
            os.utime(schemas, ns=(schemas.stat().st_atime_ns, schemas.stat().st_mtime_ns + 1))
            with anyio.fail_after(20):
                while True:
                    tools = {t.name: t for t in (await client.list_tools()).tools}
                    if _sku_description(tools["get_item"]) != "Stock keeping unit.":
                        break
                    await anyio.sleep(0.2)
            assert _sku_description(tools["get_item"]) == "The item's stock keeping unit."
    assert '"message":"reloaded curation.yaml' in log.read_text()
