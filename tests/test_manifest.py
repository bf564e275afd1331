"""`facade manifest`: a server.json that the MCP registry's own JSON Schema accepts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from facade.cli import main
from facade.curate.manifest import SCHEMA_URL
from facade.version import __version__

ROOT = Path(__file__).resolve().parent.parent
CURATION = str(ROOT / "curation.yaml")
# Vendored from the registry; see tests/data/mcp-registry/README.md. No network here.
SCHEMA = json.loads((Path(__file__).parent / "data" / "mcp-registry" / "server.schema.json")
                    .read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def manifest(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(main, ["manifest", "--config", CURATION, *args],
                                env={"INVENTORY_TOKEN": "never-shown"})
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "never-shown" not in result.stdout + result.stderr
    data = json.loads(result.stdout) if result.exit_code == 0 and result.stdout else None
    return result.exit_code, data, result.stderr


def errors(data: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in VALIDATOR.iter_errors(data)]


def test_the_vendored_schema_is_the_published_one() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == SCHEMA_URL


def test_manifest_validates_and_describes_the_package() -> None:
    code, data, err = manifest("--name", "io.github.acme/inventory")
    assert code == 0, err
    assert errors(data) == []
    assert data["$schema"] == SCHEMA_URL
    assert data["name"] == "io.github.acme/inventory"
    assert data["version"] == __version__
    assert data["title"] == "inventory"
    assert data["description"] == "Read-only access to the inventory service."  # instructions
    assert "remotes" not in data
    [package] = data["packages"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == "facade-mcp"  # `facade` on PyPI is another project
    assert package["version"] == __version__
    assert package["runtimeHint"] == "uvx"
    assert package["transport"] == {"type": "stdio"}
    assert [a.get("value") or a.get("name") for a in package["packageArguments"]] == [
        "serve", "--config"]
    assert err == ""


def test_environment_variables_are_named_and_credentials_marked_secret() -> None:
    _, data, _ = manifest("--name", "io.github.acme/inventory")
    env = {v["name"]: v for v in data["packages"][0]["environmentVariables"]}
    assert env["INVENTORY_TOKEN"]["isSecret"] is True
    assert env["INVENTORY_TOKEN"]["isRequired"] is True
    assert env["INVENTORY_URL"]["isSecret"] is False
    assert env["INVENTORY_URL"]["isRequired"] is False
    assert env["INVENTORY_URL"]["default"] == "http://127.0.0.1:8080/v1"
    assert "value" not in env["INVENTORY_TOKEN"]


def test_remote_with_bearer_header_validates() -> None:
    code, data, _ = manifest("--name", "io.github.acme/inventory",
                             "--remote", "https://facade.example.com/mcp", "--remote-bearer")
    assert code == 0 and errors(data) == []
    [remote] = data["remotes"]
    assert remote["type"] == "streamable-http"
    assert remote["headers"][0]["name"] == "Authorization"
    assert remote["headers"][0]["isSecret"] is True


def test_default_name_is_a_placeholder_with_a_note() -> None:
    code, data, err = manifest()
    assert code == 0 and errors(data) == []
    assert data["name"] == "io.github.your-user/inventory"
    assert "placeholder" in err and "--name" in err


def test_long_descriptions_are_clipped(write_curation: Callable[[str], Path]) -> None:
    curation = write_curation("version: 1\nspec: specs/inventory.yaml\nbackend: {base_url: "
                              "'http://127.0.0.1:9'}\nread_only: false\ntools:\n"
                              + "".join(f"  tool_number_{i}: {{operation: getItem}}\n"
                                        for i in range(12)))
    result = CliRunner().invoke(main, ["manifest", "--config", str(curation), "--name",
                                       "io.github.acme/x"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert errors(data) == []
    assert len(data["description"]) <= 100 and data["description"].endswith("…")
    # Cut between two names, not inside one.
    assert re.fullmatch(r"Curated MCP tools for Inventory API: (tool_number_\d, )*"
                        r"tool_number_\d…", data["description"])
    assert "environmentVariables" not in data["packages"][0]
    code, data, _ = manifest("--name", "io.github.acme/x", "--description", "x" * 300)
    assert code == 0 and errors(data) == [] and len(data["description"]) == 100


def test_output_file(tmp_path: Path) -> None:
    out = tmp_path / "server.json"
    code, _, err = manifest("--name", "io.github.acme/inventory", "-o", str(out))
    assert code == 0 and f"wrote {out}" in err
    assert errors(json.loads(out.read_text())) == []


def test_the_schema_really_checks() -> None:
    """The validator is live: what the registry refuses, it refuses too."""
    _, data, _ = manifest("--name", "io.github.acme/inventory")
    assert errors({**data, "name": "no-slash"})
    assert errors({**data, "description": "x" * 101})
    assert errors({k: v for k, v in data.items() if k != "version"})
    assert errors({**data, "packages": [{**data["packages"][0], "version": "latest"}]})


@pytest.mark.parametrize("args", [["--name", "not reverse dns"], ["--remote", "ftp://x"]],
                         ids=["bad-name", "bad-remote"])
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, _, err = manifest(*args)
    assert code == 2 and "Traceback" not in err
