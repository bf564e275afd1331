"""Several APIs in one façade (`apis:`): each with its own spec, backend, credentials and
breaker; names namespaced or explicit, checked for collisions across APIs."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import anyio
import inventory_backend
import pytest
from click.testing import CliRunner
from fastmcp import Client
from faulty_backend import FaultyHandler
from log_support import messages

from facade.call.events import Observer
from facade.call.upstream import MissingCredentialError
from facade.cli import main
from facade.errors import CurationError
from facade.loading.curation import MultiCuration, parse_any_curation
from facade.loading.loader import load
from facade.serve.http import Lifecycle
from facade.serve.server import build_server, build_upstreams

Write = Callable[..., Path]
ROOT = Path(__file__).resolve().parent.parent
FAULTY_SPEC = ROOT / "tests" / "data" / "faulty" / "openapi.yaml"
INVENTORY_TOKEN = "test-token"  # what the inventory backend demands (tests/conftest.py)
FAULTY_TOKEN = "faulty-only-token-91c2"

CURATION = f"""
version: 1
server: {{name: two-apis}}
apis:
  inventory:
    namespace: inv
    spec: specs/inventory.yaml
    backend:
      base_url: ${{INVENTORY_URL}}
      auth: {{bearer_env: INVENTORY_TOKEN}}
    tools:
      list_items:
        operation: listItems
        params: {{X-Tenant: {{value: acme}}}}
      get_item:
        operation: getItem
        params: {{X-Tenant: {{value: acme}}, expand: {{hidden: true}}, itemId: {{rename: sku}}}}
  faulty:
    spec: {FAULTY_SPEC}
    backend:
      base_url: ${{FAULTY_URL}}/api
      auth: {{bearer_env: FAULTY_TOKEN}}
      retries: {{attempts: 0}}
      circuit_breaker: {{failures: 2, reset_after: 60}}
    tools:
      behave: {{operation: behave}}
prompts:
  check_stock:
    template: Look up {{sku}} with inv_get_item, then ask the faulty API.
    arguments: [{{name: sku}}]
    tools: [inv_get_item, behave]
"""


@pytest.fixture
def env(backend_url: str, faulty_url: str, monkeypatch: pytest.MonkeyPatch
        ) -> dict[str, str]:
    # The inventory backend reads INVENTORY_TOKEN from this process's environment.
    monkeypatch.setenv("INVENTORY_TOKEN", INVENTORY_TOKEN)
    return {"INVENTORY_URL": backend_url, "INVENTORY_TOKEN": INVENTORY_TOKEN,
            "FAULTY_URL": faulty_url, "FAULTY_TOKEN": FAULTY_TOKEN}


def _error(exc: pytest.ExceptionInfo[CurationError]) -> str:
    return exc.value.format()


# --- loading ---------------------------------------------------------------------------

def test_two_apis_load_with_namespaced_and_explicit_names(write_curation: Write,
                                                          env: dict[str, str]) -> None:
    facade = load(write_curation(CURATION), environ=env)
    assert [(t.name, t.api) for t in facade.tools] == [
        ("inv_list_items", "inventory"), ("inv_get_item", "inventory"), ("behave", "faulty")]
    assert facade.is_multi_api and list(facade.backends) == ["inventory", "faulty"]
    assert facade.backend is facade.backends["inventory"]  # the first API's
    assert facade.backend_for("faulty").base_url == env["FAULTY_URL"] + "/api"
    assert facade.backend_for("faulty").auth == {"bearer_env": "FAULTY_TOKEN",
                                                 "header": "X-Api-Key"}
    assert facade.name == "two-apis"
    assert [p.tools for p in facade.prompts] == [("inv_get_item", "behave")]


def test_a_single_api_curation_is_not_multi(write_curation: Write,
                                            example_env: dict[str, str]) -> None:
    facade = load(ROOT / "curation.yaml", environ=example_env)
    assert not facade.is_multi_api and facade.backends == {}
    assert {t.api for t in facade.tools} == {""}
    assert facade.backend_for("") is facade.backend


def test_colliding_tool_names_name_both_places(write_curation: Write,
                                               env: dict[str, str]) -> None:
    path = write_curation(CURATION.replace("      behave: {operation: behave}",
                                           "      inv_get_item: {operation: behave}")
                          .replace("[inv_get_item, behave]", "[inv_get_item]"))
    with pytest.raises(CurationError) as exc:
        load(path, environ=env)
    assert _error(exc) == (
        f"{path}:25:7: apis.faulty.tools.inv_get_item: tool 'inv_get_item' is also declared "
        "at apis.inventory.tools.get_item (line 14) (set `namespace` on one of the APIs, "
        "or rename one of them)")


def test_mixing_the_single_api_keys_with_apis_is_an_error(write_curation: Write,
                                                          env: dict[str, str]) -> None:
    path = write_curation("version: 1\nspec: specs/inventory.yaml\n" +
                          textwrap.dedent(CURATION).split("version: 1\n", 1)[1])
    with pytest.raises(CurationError) as exc:
        load(path, environ=env)
    assert _error(exc) == (
        f"{path}:2:1: spec: 'spec' at the top level cannot be combined with `apis:` "
        "(move it under apis.<name>, or remove `apis:`)")


def test_problems_inside_an_api_keep_their_positions(
        write_curation: Write, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = ("12:20: apis.inventory.tools.list_items.operation: unknown operation "
               "'listItem' in specs/inventory.yaml (did you mean 'listItems' or 'getItem'?)")
    # A shape problem in one API does not hide a cross-reference problem in the other.
    path = write_curation(CURATION.replace("operation: listItems", "operation: listItem")
                          .replace("retries: {attempts: 0}", "retries: {atempts: 0}"))
    monkeypatch.chdir(path.parent)  # the spec is shown relative to the working directory
    with pytest.raises(CurationError) as exc:
        load(path, environ=env)
    assert _error(exc).splitlines() == [
        f"{path}:{unknown}",
        f"{path}:22:17: apis.faulty.backend.retries.atempts: unknown key 'atempts' "
        "(did you mean 'attempts'?)",
    ]
    path = write_curation(CURATION.replace("operation: listItems", "operation: listItem"))
    with pytest.raises(CurationError) as exc:
        load(path, environ=env)
    assert _error(exc) == f"{path}:{unknown}"


def test_unset_variables_of_the_second_api_are_reported(write_curation: Write,
                                                        env: dict[str, str]) -> None:
    path = write_curation(CURATION)
    with pytest.raises(CurationError) as exc:
        load(path, environ={k: v for k, v in env.items() if k != "FAULTY_URL"})
    assert f"{path}:20:17: apis.faulty.backend.base_url: environment variable " \
        "'FAULTY_URL' is not set" in _error(exc)


def test_prompts_name_final_tool_names(write_curation: Write, env: dict[str, str]) -> None:
    path = write_curation(CURATION.replace("tools: [inv_get_item, behave]",
                                           "tools: [get_item, behave]"))
    with pytest.raises(CurationError) as exc:
        load(path, environ=env)
    assert f"{path}:30:13: prompts.check_stock.tools[0]: 'get_item' is not a curated tool " \
        "(did you mean 'inv_get_item'?)" == _error(exc)


RESOURCES = """
version: 1
apis:
  inventory:
    namespace: inv
    spec: specs/inventory.yaml
    backend: {base_url: "http://127.0.0.1:9"}
    tools:
      list_items: {operation: listItems, params: {X-Tenant: {value: acme}}}
    resources:
      item:
        operation: getItem
        uri: "inventory://items/{sku}"
        params: {X-Tenant: {value: acme}, expand: {hidden: true}, itemId: {rename: sku}}
  again:
    spec: specs/inventory.yaml
    backend: {base_url: "http://127.0.0.1:9"}
    tools:
      list_more: {operation: listItems, params: {X-Tenant: {value: acme}}}
    resources:
      item:
        operation: getItem
        uri: "inventory://items/{sku}"
        params: {X-Tenant: {value: acme}, expand: {hidden: true}, itemId: {rename: sku}}
"""


def test_resources_are_namespaced_and_uris_checked_across_apis(
        write_curation: Write) -> None:
    one = RESOURCES.split("  again:")[0]
    facade = load(write_curation(one))
    assert [(r.name, r.tool.name, r.tool.api) for r in facade.resources] == [
        ("inv_item", "inv_item", "inventory")]
    path = write_curation(RESOURCES, "clash.yaml")
    with pytest.raises(CurationError) as exc:
        load(path)
    assert _error(exc) == (
        f"{path}:22:9: apis.again.resources.item.uri: resource URI 'inventory://items/{{sku}}' "
        "is also declared at apis.inventory.resources.item.uri (line 12) (set `namespace` "
        "on one of the APIs, or rename one of them)")


def test_the_multi_form_validates_its_own_keys(write_curation: Write) -> None:
    path = write_curation("version: 1\napis:\n  inventory:\n    namespce: inv\n"
                          "    spec: specs/inventory.yaml\n    backend: {base_url: 'http://h'}\n"
                          "    tools: {a: {operation: getItem}}\n")
    with pytest.raises(CurationError) as exc:
        load(path)
    assert _error(exc) == (f"{path}:4:5: apis.inventory.namespce: unknown key 'namespce' "
                           "(did you mean 'namespace'?)")


# --- calling ---------------------------------------------------------------------------

async def test_each_backend_gets_only_its_own_token(write_curation: Write,
                                                    env: dict[str, str]) -> None:
    facade = load(write_curation(CURATION), environ=env)
    inventory_seen, faulty_seen = inventory_backend.Handler.seen, FaultyHandler.seen
    inv_before, faulty_before = len(inventory_seen), len(faulty_seen)
    async with Client(build_server(facade, environ=env)) as client:
        assert {t.name for t in await client.list_tools()} == {
            "inv_list_items", "inv_get_item", "behave"}
        item = await client.call_tool("inv_get_item", {"sku": "SKU-1042"})
        assert item.structured_content is not None
        assert item.structured_content["sku"] == "SKU-1042"
        echoed = await client.call_tool("behave", {"mode": "echo"})
        assert not echoed.is_error
    inventory_headers = [r["headers"] for r in inventory_seen[inv_before:]]
    faulty_headers = [r["headers"] for r in faulty_seen[faulty_before:]]
    assert [h.get("Authorization") for h in inventory_headers] == [
        f"Bearer {INVENTORY_TOKEN}"]
    assert [h.get("Authorization") for h in faulty_headers] == [f"Bearer {FAULTY_TOKEN}"]
    assert FAULTY_TOKEN not in json.dumps(inventory_headers)
    assert INVENTORY_TOKEN not in json.dumps(faulty_headers)


class _Breakers(Observer):
    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    def breaker_changed(self, backend: str, state: str) -> None:
        self.changes.append((backend, state))


async def test_a_breaker_opening_on_one_api_leaves_the_other_alone(
        write_curation: Write, env: dict[str, str]) -> None:
    facade = load(write_curation(CURATION), environ=env)
    observer = _Breakers()
    upstreams = build_upstreams(facade, environ=env, observer=observer)
    server = build_server(facade, observer=observer, upstream=upstreams)
    lifecycle = Lifecycle(server, upstreams, len(facade.tools), grace=1)
    async with Client(server) as client:
        for _ in range(2):
            await client.call_tool("behave", {"mode": "status", "status": 500,
                                              "key": "multi-cb"}, raise_on_error=False)
        assert observer.changes == [(env["FAULTY_URL"] + "/api", "open")]
        refused = await client.call_tool("behave", {"mode": "ok"}, raise_on_error=False)
        assert refused.is_error and "circuit breaker open" in str(refused.content)
        assert FaultyHandler.hits["status:multi-cb"] == 2
        assert await lifecycle.not_ready() == []  # one backend down: the replica still serves
        listed = await client.call_tool("inv_list_items", {})
        assert not listed.is_error
    assert upstreams["inventory"].breaker_state == "closed"
    assert not upstreams["inventory"].is_open_client  # the lifespan closed both clients
    assert not upstreams["faulty"].is_open_client


def test_a_missing_credential_of_any_api_is_reported_before_any_client_opens(
        write_curation: Write, env: dict[str, str]) -> None:
    facade = load(write_curation(CURATION), environ=env)
    with pytest.raises(MissingCredentialError) as exc:
        build_upstreams(facade, environ={"INVENTORY_TOKEN": INVENTORY_TOKEN})
    assert str(exc.value) == ("apis.faulty.backend.auth.bearer_env: environment variable "
                              "'FAULTY_TOKEN' is not set")


# --- the commands ----------------------------------------------------------------------

def test_lock_and_diff_cover_every_api(write_curation: Write, env: dict[str, str]) -> None:
    """More in tests/test_drift_multi.py."""
    path = write_curation(CURATION)
    result = CliRunner().invoke(main, ["lock", "--config", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{path.with_name('curation.lock.json')}: 3 operation(s), "
                                    "2 API(s), specs sha256:")
    result = CliRunner().invoke(main, ["diff", "--config", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert [line.split(": ", 1)[0] for line in result.stdout.splitlines()] == [
        "api 'inventory'", "api 'faulty'"]
    assert all(line.endswith("no drift since " + str(path.with_name("curation.lock.json")))
               for line in result.stdout.splitlines())


async def test_an_artifact_holds_every_api(write_curation: Write, env: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from facade.loading.artifact import artifact_path, load_fast

    path = write_curation(CURATION.replace("      get_item:\n", """      get_item:
        description: "Get one item.\\u200b"
""", 1))
    fresh = load(path, environ=env)
    built = CliRunner().invoke(main, ["build", "--config", str(path)], env=env)
    assert built.exit_code == 0, built.output
    # Keyed by the curation and the 4 spec files of both APIs.
    assert "3 tool(s)" in built.stdout and "keyed by 5 file digest(s)" in built.stdout
    target = artifact_path(path, {})
    assert target is not None and target.is_file()
    monkeypatch.setattr("facade.loading.single.load_spec", _no_spec)
    facade, why = load_fast(path, artifact=target, environ=env)
    assert why is None
    assert facade == fresh  # tools, api bindings, backends and warnings alike
    assert [w.path for w in facade.warnings] == [
        ("apis", "inventory", "tools", "get_item", "description")]
    async with Client(build_server(facade, environ=env)) as client:
        assert not (await client.call_tool("behave", {"mode": "ok"})).is_error
        assert not (await client.call_tool("inv_get_item", {"sku": "SKU-1042"})).is_error


def _no_spec(*args: object) -> None:
    raise AssertionError("the spec was read although the artifact is current")


def test_check_and_tools_work_for_several_apis(write_curation: Write,
                                               env: dict[str, str]) -> None:
    path = write_curation(CURATION)
    runner = CliRunner()
    checked = runner.invoke(main, ["check", "--config", str(path), "--max-tokens", "100000"],
                            env=env)
    assert checked.exit_code == 0, checked.output
    assert f"{path}: ok, 3 tool(s) over " in checked.output
    listed = runner.invoke(main, ["tools", "--config", str(path), "--budget", "--json"],
                           env=env)
    assert listed.exit_code == 0, listed.output
    budget = json.loads(listed.stdout)
    assert [t["name"] for t in budget["curated"]["tools"]] == [
        "inv_list_items", "inv_get_item", "behave"]
    assert budget["uncurated"]["operations"] == 7 + 2  # both specs, every operation


def test_lint_positions_findings_under_the_api(write_curation: Write,
                                               env: dict[str, str]) -> None:
    path = write_curation(CURATION.replace("      behave: {operation: behave}",
                                           "      behave: {operation: behave, "
                                           f"description: {'long ' * 500}}}"))
    checked = CliRunner().invoke(main, ["check", "--config", str(path)], env=env)
    assert checked.exit_code == 0, checked.output
    assert f"{path}:25:48: warning: apis.faulty.tools.behave.description: the description " \
        "is 2,499 characters, over 1,024" in checked.output


def test_install_lists_every_api_s_variables(write_curation: Write, env: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from facade.curate.install import requirements

    for name in env:
        monkeypatch.delenv(name, raising=False)
    req = requirements(write_curation(CURATION))
    described = {v.name: (v.description, v.secret) for v in req.env}
    assert described == {
        "INVENTORY_URL": ("Part of the backend base URL (backend.base_url) of the "
                          "inventory API.", False),
        "FAULTY_URL": ("Part of the backend base URL (backend.base_url) of the faulty API.",
                       False),
        "INVENTORY_TOKEN": ("Bearer token for the backend API (inventory API).", True),
        "FAULTY_TOKEN": ("Bearer token for the backend API (faulty API).", True),
    }


def test_an_invalid_api_name_gets_the_api_name_rule(write_curation: Write) -> None:
    path = write_curation("version: 1\napis:\n  Inventory:\n    spec: specs/inventory.yaml\n"
                          "    backend: {base_url: 'http://h'}\n"
                          "    tools: {a: {operation: getItem}}\n")
    with pytest.raises(CurationError) as exc:
        load(path)
    assert _error(exc).startswith(f"{path}:3:3: apis.Inventory: invalid name 'Inventory': ")
    assert _error(exc).endswith("(API names are snake_case: ^[a-z][a-z0-9_]{0,31}$)")


def test_parse_any_curation_dispatches_on_apis(write_curation: Write) -> None:
    from facade.loading.yamlsource import read_yaml

    doc = read_yaml(write_curation(CURATION))
    assert isinstance(parse_any_curation(doc), MultiCuration)


async def _logged(log: Path, line: str) -> None:
    """Until the server's log holds `line` (bounded)."""
    with anyio.fail_after(20):
        while line not in (log.read_text(errors="replace") if log.exists() else ""):
            await anyio.sleep(0.1)


async def test_a_reload_swaps_tools_of_any_api_but_not_backends(
        write_curation: Write, env: dict[str, str]) -> None:
    """Through a real `facade serve --watch` over stdio, and its log lines."""
    from fastmcp.client.transports import StdioTransport

    path = write_curation(CURATION)
    log = path.parent / "serve.log"
    inherited = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    transport = StdioTransport(sys.executable, ["-m", "facade", "serve", "--watch",
                                                "--config", str(path)],
                               env={**inherited, **env, "PYTHONUNBUFFERED": "1"},
                               cwd=str(path.parent), log_file=log)
    async with Client(transport) as client:
        await _logged(log, '"message":"watching ')
        path.write_text(path.read_text().replace("behave: {", "misbehave: {")
                        .replace("inv_get_item, behave]", "inv_get_item, misbehave]"))
        await _logged(log, "reloaded curation.yaml: 3 tool(s), added misbehave, "
                      "removed behave")
        assert {t.name for t in await client.list_tools()} == {
            "inv_list_items", "inv_get_item", "misbehave"}
        echoed = await client.call_tool("misbehave", {"mode": "ok", "key": "reloaded"})
        assert not echoed.is_error  # bound to the faulty API's upstream
        assert FaultyHandler.hits["ok:reloaded"] == 1
        path.write_text(path.read_text().replace("circuit_breaker: {failures: 2",
                                                 "circuit_breaker: {failures: 3"))
        await _logged(log, "curation.yaml changed backend: settings, which take "
                      "effect on a restart; still serving the last version")
        assert {t.name for t in await client.list_tools()} == {
            "inv_list_items", "inv_get_item", "misbehave"}
    assert messages(log.read_text()).count(
        "reloaded curation.yaml: 3 tool(s), added misbehave, removed behave") == 1


def test_contract_examples_record_and_replay_per_api(write_curation: Write,
                                                     env: dict[str, str]) -> None:
    path = write_curation(CURATION)
    runner = CliRunner()
    for tool, args in [("behave", {"mode": "ok", "key": "fixture"}),
                       ("inv_get_item", {"sku": "SKU-1042"})]:
        recorded = runner.invoke(main, ["call", tool, "--config", str(path), "--args",
                                        json.dumps(args), "--record", "first"], env=env)
        assert recorded.exit_code == 0, recorded.output
    replayed = runner.invoke(main, ["test", "--config", str(path)], env=env)
    assert replayed.exit_code == 0, replayed.output
    assert replayed.stdout.endswith("2 fixture(s): 2 ok\n")
    fixtures = "".join(p.read_text() for p in (path.parent / "fixtures").rglob("*.json"))
    assert FAULTY_TOKEN not in fixtures and INVENTORY_TOKEN not in fixtures


def test_a_namespaced_name_over_64_characters_is_an_error(write_curation: Write) -> None:
    long = "t" * 60
    path = write_curation(f"""
        version: 1
        apis:
          inventory:
            namespace: inventory
            spec: specs/inventory.yaml
            backend: {{base_url: "http://127.0.0.1:9"}}
            tools:
              {long}: {{operation: listItems, params: {{X-Tenant: {{value: acme}}}}}}
        """)
    with pytest.raises(CurationError) as exc:
        load(path)
    assert _error(exc) == (
        f"{path}:8:7: apis.inventory.tools.{long}: the namespaced name 'inventory_{long}' "
        "is over 64 characters (shorten the namespace or the name)")


def test_lint_counts_the_tools_of_every_api(write_curation: Write) -> None:
    def api(name: str) -> str:
        tools = "".join(f"      {name}_{i}: {{operation: listItems, description: Items "
                        f"{i}., params: {{X-Tenant: {{value: acme}}}}}}\n" for i in range(8))
        return (f"  {name}:\n    spec: specs/inventory.yaml\n"
                f"    backend: {{base_url: 'http://127.0.0.1:9'}}\n    tools:\n{tools}")

    path = write_curation("version: 1\napis:\n" + api("one") + api("two"))
    checked = CliRunner().invoke(main, ["check", "--config", str(path)])
    assert checked.exit_code == 0, checked.output
    assert checked.output.count("tools: past 15") == 1
    assert f"{path}:2:1: warning: apis: 16 tools: past 15" in checked.output
