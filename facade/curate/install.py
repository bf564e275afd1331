"""`facade install`: register the façade as a stdio server in an MCP host's config file.

Each host keeps a JSON file with a map of servers. We add one entry that runs
`<this python> -m facade serve --config <absolute curation path>` (or, with the `uvx`
runner, `uvx --from facade-mcp==VERSION facade serve --config …`: the published package,
pinned to this version, in an environment uv manages), and pass through the environment
variables the curation needs by *name*, in the host's own syntax:

```text
host            file                          map          env reference
claude-desktop  claude_desktop_config.json    mcpServers   none: the user adds values
cursor          ~/.cursor/mcp.json            mcpServers   ${env:NAME}
vscode          .vscode/mcp.json              servers      ${env:NAME}; secrets via inputs
claude-code     .mcp.json (project scope)     mcpServers   ${NAME:-}
```

A value is never written. The existing file is merged, never rewritten from scratch: it
is backed up first and replaced atomically, and a file that is not valid JSON is left
untouched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from facade.loading.curation import Auth, Curation, MultiCuration, parse_any_curation
from facade.loading.loader import load
from facade.loading.yamlsource import read_yaml
from facade.tools import Facade
from facade.version import DISTRIBUTION, __version__

__all__ = ["HOSTS", "RUNNERS", "SERVER_NAME", "EnvVar", "Host", "InstallError", "Requirements", "Result",
           "env_notes", "input_id", "install", "merge_entry", "read_config", "requirements",
           "server_entry", "snippet"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_HEADER = re.compile(r"auth|key|token|secret|passw|cookie|session", re.IGNORECASE)
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Runner = Literal["python", "uvx"]
RUNNERS: tuple[Runner, ...] = ("python", "uvx")


class InstallError(Exception):
    """The host's config file cannot be merged; nothing was written."""


@dataclass(frozen=True)
class EnvVar:
    """An environment variable the façade reads when it starts, by name only."""

    name: str
    description: str
    secret: bool
    required: bool  # False when the curation gives a `${VAR:-default}`
    default: str | None = None


@dataclass(frozen=True)
class Requirements:
    """What a host needs to start this façade."""

    facade: Facade
    config_file: Path  # absolute
    env: tuple[EnvVar, ...]
    runner: Runner = "python"  # what the host runs: this interpreter, or uvx

    @property
    def slug(self) -> str:
        """The façade's name as a config key: `Inventory API` → `inventory-api`."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.facade.name.lower()).strip("-")[:64]
        return slug or "facade"

    def command(self) -> tuple[str, list[str]]:
        serve = ["serve", "--config", str(self.config_file)]
        if self.runner == "uvx":
            # Pinned: the host runs the version that wrote (and checked) this entry.
            return "uvx", ["--from", f"{DISTRIBUTION}=={__version__}", "facade", *serve]
        # Not resolved: a virtualenv's python is a symlink, and resolving it would leave
        # the virtualenv (and its installed facade) behind.
        return os.path.abspath(sys.executable), ["-m", "facade", *serve]


def _strings(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, f"[{index}]"))
    elif isinstance(value, str):
        yield path, value


def _describe(path: tuple[str, ...]) -> tuple[str, bool]:
    """What a `${VAR}` at `path` is for, and whether it looks like a credential."""
    if path[:1] == ("apis",) and len(path) > 2:  # a multi-API curation: say which API
        what, secret = _describe(path[2:])
        return f"{what.removesuffix('.')} of the {path[1]} API.", secret
    if path == ("backend", "base_url"):
        return "Part of the backend base URL (backend.base_url).", False
    if path[:2] == ("backend", "headers") and len(path) == 3:
        return f"Value of the backend header {path[2]}.", bool(_SECRET_HEADER.search(path[2]))
    return f"Used in {'.'.join(path).replace('.[', '[')}.", bool(_SECRET_HEADER.search(path[-1]))


_AUTH_LABELS = {
    "bearer_env": "Bearer token for the backend API",
    "api_key_env": "API key for the backend, sent as {header}",
    "basic_user_env": "User name for the backend (HTTP basic auth)",
    "basic_password_env": "Password for the backend (HTTP basic auth)",
}


_EXCHANGE_LABELS = {
    "client_secret_env": "Client secret of the façade at the token service (token exchange)",
    "subject_token_env": "Your access token, exchanged for a backend token (local use)",
}


def _env_vars(data: dict[str, Any], curation: Curation | MultiCuration) -> list[EnvVar]:
    """Every variable the `backend:` and `server:` settings expand, then the backends'
    credentials (`backend.auth.*_env`); every API's, for a multi-API curation."""
    backends: list[tuple[tuple[str, ...], Auth | None, str]]
    if isinstance(curation, MultiCuration):
        backends = [(("apis", api, "backend"), ac.backend.auth, f" ({api} API)")
                    for api, ac in curation.apis.items()]
    else:
        backends = [(("backend",), curation.backend.auth, "")]
    found: dict[str, EnvVar] = {}
    for at in [*(b[0] for b in backends), ("server",)]:
        section: Any = data
        for key in at:
            section = section.get(key) if isinstance(section, dict) else None
        for path, text in _strings(section, at):
            for match in _VAR.finditer(text):
                description, secret = _describe(path)
                found.setdefault(match.group(1), EnvVar(
                    match.group(1), description, secret=secret,
                    required=match.group(2) is None, default=match.group(2)))
    for _, auth, which in backends:
        if auth is None:
            continue
        for key, label in _AUTH_LABELS.items():
            name = getattr(auth, key)
            if name:
                found[name] = EnvVar(name, label.format(header=auth.header) + which + ".",
                                     secret=True, required=True)
        exchange = auth.token_exchange
        for key, label in _EXCHANGE_LABELS.items():
            name = getattr(exchange, key) if exchange is not None else None
            if name:
                found[name] = EnvVar(name, label + which + ".", secret=True, required=True)
    return list(found.values())


def requirements(config: str | Path) -> Requirements:
    """Load the curation and list the environment variables it needs.

    Variables the curation needs but the current shell does not set get a stand-in for
    this load only: the host, not this shell, will provide them.

    Raises:
        LoadError: the curation or its spec has problems.
    """
    doc = read_yaml(config)
    curation = parse_any_curation(doc)
    env = _env_vars(doc.data, curation)
    environ = dict(os.environ)
    for path, text in _strings(doc.data, ()):
        for match in _VAR.finditer(text):
            name = match.group(1)
            if match.group(2) is None and not environ.get(name) and any(
                    v.name == name for v in env):
                # A URL-shaped stand-in where the variable starts a URL-like setting.
                url = text.startswith("${" + name) and re.search(r"url|uri", path[-1], re.I)
                environ[name] = "https://placeholder.invalid" if url else "placeholder"
    facade = load(config, environ=environ)
    return Requirements(facade, Path(config).resolve(), tuple(env))


@dataclass(frozen=True)
class Host:
    """An MCP host: where it keeps its servers, and how it refers to env vars."""

    key: str
    title: str
    servers_key: str
    default_path: Callable[[], Path]
    env_ref: Callable[[EnvVar], str] | None  # None: the host cannot reference variables
    typed: bool = True  # entries carry "type": "stdio"
    inputs: bool = False  # VS Code: secrets are prompted for and stored by the editor


def _claude_desktop_path() -> Path:
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
        return base / "Claude" / "claude_desktop_config.json"
    base = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return base / "Claude" / "claude_desktop_config.json"


def input_id(var: EnvVar) -> str:
    """The VS Code input id for a secret: `INVENTORY_TOKEN` → `inventory-token`."""
    return var.name.lower().replace("_", "-")


HOSTS: dict[str, Host] = {
    "claude-desktop": Host("claude-desktop", "Claude Desktop", "mcpServers",
                           _claude_desktop_path, None, typed=False),
    "cursor": Host("cursor", "Cursor", "mcpServers", lambda: Path.home() / ".cursor" / "mcp.json",
                   lambda v: f"${{env:{v.name}}}"),
    "vscode": Host("vscode", "VS Code", "servers", lambda: Path.cwd() / ".vscode" / "mcp.json",
                   lambda v: f"${{input:{input_id(v)}}}" if v.secret else f"${{env:{v.name}}}",
                   inputs=True),
    # `${VAR:-}`: an unset variable becomes empty, which `facade serve` reports by name,
    # instead of failing the whole file or arriving as the literal text `${VAR}`.
    "claude-code": Host("claude-code", "Claude Code", "mcpServers",
                        lambda: Path.cwd() / ".mcp.json", lambda v: f"${{{v.name}:-}}"),
}


def server_entry(host: Host, req: Requirements) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The server entry for `host`, and the VS Code inputs it refers to."""
    command, args = req.command()
    entry: dict[str, Any] = {"type": "stdio"} if host.typed else {}
    entry.update(command=command, args=args)
    inputs = []
    if host.env_ref is not None and req.env:
        entry["env"] = {var.name: host.env_ref(var) for var in req.env}
        if host.inputs:
            inputs = [{"type": "promptString", "id": input_id(var), "password": True,
                       "description": f"{var.name}: {var.description}"}
                      for var in req.env if var.secret]
    return entry, inputs


def read_config(path: Path) -> dict[str, Any]:
    """The host's config file as a dict; `{}` when it does not exist or is empty.

    Raises:
        InstallError: the file is not a JSON object (it is left untouched).
    """
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"{path}: cannot read it ({exc}); nothing was written") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstallError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); nothing was "
            "written. Fix the file (comments and trailing commas count), or add the entry "
            "by hand: --dry-run prints it") from None
    if not isinstance(data, dict):
        raise InstallError(f"{path}: the top level is not a JSON object; nothing was written")
    return data


def merge_entry(data: dict[str, Any], host: Host, name: str, entry: dict[str, Any],
                inputs: list[dict[str, Any]], *, force: bool) -> str:
    """Put `entry` under `name` in `data` (in place). Returns "added", "replaced" or "unchanged".

    Raises:
        InstallError: the name is taken (and not `force`), or the file's shape is wrong.
    """
    servers = data.setdefault(host.servers_key, {})
    if not isinstance(servers, dict):
        raise InstallError(f"{host.servers_key!r} is not a JSON object; nothing was written")
    existing_inputs = data.get("inputs", [])
    if inputs and not isinstance(existing_inputs, list):
        raise InstallError("'inputs' is not a JSON array; nothing was written")
    if servers.get(name) == entry and all(i in existing_inputs for i in inputs):
        return "unchanged"
    status = "added"
    if name in servers:
        if not force:
            raise InstallError(f"a server named {name!r} is already there; pass --force to "
                               "replace it, or --name to add this one under another name")
        status = "replaced"
    servers[name] = entry
    if inputs:
        ids = {i.get("id") for i in existing_inputs if isinstance(i, dict)}
        existing_inputs.extend(i for i in inputs if i["id"] not in ids)
        data["inputs"] = existing_inputs
    return status


def _write_atomically(path: Path, text: str) -> Path | None:
    """Back the file up, then replace it in one step. Returns the backup's path."""
    if path.is_symlink():  # a dotfiles manager's link stays a link
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        n = 1
        while backup.exists():  # two runs in one second keep both backups
            backup, n = path.with_name(f"{path.name}.{stamp}-{n}.bak"), n + 1
        shutil.copy2(path, backup)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return backup


@dataclass(frozen=True)
class Result:
    path: Path
    status: str  # added | replaced | unchanged
    backup: Path | None


def install(host: Host, req: Requirements, name: str, path: Path, *, force: bool) -> Result:
    """Merge the server entry into the host's file at `path`.

    Raises:
        InstallError: nothing was written, and the message says why.
    """
    data = read_config(path)
    entry, inputs = server_entry(host, req)
    try:
        status = merge_entry(data, host, name, entry, inputs, force=force)
    except InstallError as exc:
        raise InstallError(f"{path}: {exc}") from None
    if status == "unchanged":
        return Result(path, status, None)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return Result(path, status, _write_atomically(path, text))


def snippet(host: Host, req: Requirements, name: str) -> dict[str, Any]:
    """What `--dry-run` prints: the entry, in the shape of the host's file."""
    entry, inputs = server_entry(host, req)
    shown: dict[str, Any] = {host.servers_key: {name: entry}}
    if inputs:
        shown["inputs"] = inputs
    return shown


def env_notes(host: Host, req: Requirements, name: str) -> list[str]:
    """What the user still has to do about environment variables, without any value."""
    if not req.env:
        return []

    def label(v: EnvVar) -> str:
        return v.name + (" (secret)" if v.secret else "") + ("" if v.required else " (optional)")

    if host.env_ref is None:
        return [f"{host.title} cannot refer to environment variables, and facade never writes "
                f"their values: add them yourself under \"env\" in the {name!r} entry: "
                + ", ".join(label(v) for v in req.env)]
    if host.inputs:
        prompted = [v.name for v in req.env if v.secret]
        passed = [v.name for v in req.env if not v.secret]
        notes = []
        if prompted:
            notes.append(f"{host.title} asks for {', '.join(prompted)} on first start and "
                         "stores the answer itself")
        if passed:
            notes.append(f"environment, by name only (${{env:NAME}}): {', '.join(passed)}; "
                         f"set {'it' if len(passed) == 1 else 'them'} where {host.title} runs")
        return notes
    sample = host.env_ref(EnvVar("NAME", "", False, True))
    them = "it" if len(req.env) == 1 else "them"
    return [f"environment, by name only ({sample}): " + ", ".join(label(v) for v in req.env)
            + f"; set {them} where {host.title} runs"]
