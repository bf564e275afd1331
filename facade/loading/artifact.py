"""Compiled façades: `facade build` stores what load time derives from the spec.

A start-up that finds a current artifact does not read, parse or resolve the spec at all:
a 4 MB document starts as fast as a petstore. The artifact is one JSON file holding the
validated tool definitions (schemas resolved and fitted, request bindings, shaping rules),
the server name and the tools' load warnings. It is keyed by the sha256 of the curation,
of every spec file the load read (the root document and each file a `$ref` reached), of
every overlay applied to the spec, of facade's own code, and by facade's version.
Anything else found at start-up (a changed file, a new version, an unreadable, truncated
or edited artifact) falls back to a normal load, and `why` says which in one line.

What depends on the environment is never stored: `backend.base_url`, `backend.headers` and
the `server:` settings are expanded from the curation at each start, and credentials are
only ever env var *names*.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facade.errors import Problem
from facade.loading.loader import Compiled, compile_facade, load
from facade.tools import Facade, ResourceDefinition, ToolDefinition
from facade.version import __version__

__all__ = ["ARTIFACT_ENV", "BuildResult", "StaleArtifact", "artifact_path", "build",
           "load_artifact", "load_fast"]

ARTIFACT_ENV = "FACADE_ARTIFACT"
FORMAT = "facade-artifact"
FORMAT_VERSION = 1


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class StaleArtifact(Exception):
    """The artifact cannot be used; the message says why, for one line on stderr."""


@dataclass(frozen=True)
class BuildResult:
    path: Path
    facade: Facade
    bytes: int
    files: int  # how many input files the artifact is keyed by


def artifact_path(config: Path, environ: typing.Mapping[str, str] | None = None
                  ) -> Path | None:
    """Where the artifact of `config` is: `$FACADE_ARTIFACT`, else beside the curation
    (`curation.yaml` → `curation.artifact.json`). None when `FACADE_ARTIFACT=off`."""
    value = (os.environ if environ is None else environ).get(ARTIFACT_ENV, "")
    if value.lower() == "off":
        return None
    return Path(value) if value else config.with_name(config.stem + ".artifact.json")


# -- building -------------------------------------------------------------------------


def build(config: Path, output: Path, environ: dict[str, str] | None = None) -> BuildResult:
    """Load `config` in full (raising `LoadError` as `load` does) and write its artifact.

    Raises:
        OSError: the artifact cannot be written.
    """
    facade, compiled = compile_facade(config, environ=environ)
    payload = {"name": compiled.name, "tools": [encode(t) for t in compiled.tools],
               "resources": [encode(r) for r in compiled.resources],
               "warnings": [encode(w) for w in compiled.warnings]}
    base = config.resolve().parent
    data = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "facade": __version__,
        "code": _code_digest(),
        "curation": _digest(config.resolve()),
        "spec": [{"path": os.path.relpath(f, base), "sha256": _digest(f)}
                 for f in compiled.sources if f not in compiled.overlays],
        "overlays": [{"path": os.path.relpath(f, base), "sha256": _digest(f)}
                     for f in compiled.overlays],
        "payload_sha256": hashlib.sha256(_dumps(payload).encode()).hexdigest(),
        "payload": payload,
    }
    text = _dumps(data) + "\n"
    write_atomically(output, text)
    return BuildResult(output, facade, len(text.encode()), 1 + len(compiled.sources))


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` in one step, creating its folder, readable as the umask allows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        # mkstemp makes it 0600; readable like any file written here (in an image it is
        # written by root and read by the service user).
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- starting from an artifact ----------------------------------------------------------


def load_fast(config: Path, *, artifact: Path | None,
              environ: dict[str, str] | None = None) -> tuple[Facade, str | None]:
    """The façade from its artifact when that is current, else from a normal load.

    Returns the façade and, when an artifact was there but could not be used, one line
    saying why. A missing artifact at the default place is not worth a line; one named by
    `$FACADE_ARTIFACT` is.
    """
    if artifact is None:
        return load(config, environ=environ), None
    try:
        compiled = load_artifact(config, artifact)
    except FileNotFoundError:
        named = ARTIFACT_ENV in (os.environ if environ is None else environ)
        why = f"facade: no artifact at {artifact}; loading the spec" if named else None
        return load(config, environ=environ), why
    except StaleArtifact as exc:
        return load(config, environ=environ), (
            f"facade: not using {artifact}: {exc}; loading the spec (run `facade build` "
            "to refresh it)")
    return load(config, environ=environ, compiled=compiled), None


def load_artifact(config: Path, path: Path) -> Compiled:
    """The stored tools of `config`, when `path` is current for it.

    Raises:
        FileNotFoundError: there is no artifact at `path`.
        StaleArtifact: there is one, but it is unreadable or out of date.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StaleArtifact(f"cannot read it ({exc.strerror})") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StaleArtifact(f"it is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StaleArtifact("it is not a facade artifact")
    sources = _check_keys(data, config.resolve())
    overlays = _check_files(data.get("overlays", []), config.resolve(), "overlay")
    payload = data.get("payload")
    digest = hashlib.sha256(_dumps(payload).encode()).hexdigest()
    if digest != data.get("payload_sha256") or not isinstance(payload, dict):
        raise StaleArtifact("its content does not match its digest (edited or damaged)")
    try:
        return Compiled(
            name=str(payload["name"]),
            tools=tuple(decode(ToolDefinition, t) for t in payload["tools"]),
            warnings=tuple(decode(Problem, w) for w in payload["warnings"]),
            sources=(*sources, *overlays),
            resources=tuple(decode(ResourceDefinition, r) for r in payload["resources"]),
            overlays=overlays,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StaleArtifact(f"its content is malformed ({type(exc).__name__}: {exc})"
                            ) from None


def _check_keys(data: dict[str, Any], config: Path) -> tuple[Path, ...]:
    """The spec files the artifact was built from, once every digest in it is current."""
    if data.get("format_version") != FORMAT_VERSION:
        raise StaleArtifact(f"it has format {data.get('format_version')!r}, this facade "
                            f"reads {FORMAT_VERSION}")
    if data.get("facade") != __version__ or data.get("code") != _code_digest():
        raise StaleArtifact(f"it was built by another facade ({data.get('facade')}; this "
                            f"is {__version__})")
    if data.get("curation") != _digest(config):
        raise StaleArtifact(f"{config.name} changed since it was built")
    specs = data.get("spec")
    if not isinstance(specs, list) or not specs:
        raise StaleArtifact("it names no spec file")
    return _check_files(specs, config, "spec file")


def _check_files(entries: Any, config: Path, what: str) -> tuple[Path, ...]:
    """The files `entries` name, once each one's digest is current."""
    if not isinstance(entries, list):
        raise StaleArtifact(f"its {what} entries are malformed")
    files = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise StaleArtifact(f"its {what} entries are malformed")
        source = config.parent / entry["path"]
        try:
            current = _digest(source)
        except OSError:
            raise StaleArtifact(f"{what} {entry['path']} is gone") from None
        if current != entry.get("sha256"):
            raise StaleArtifact(f"{what} {entry['path']} changed since it was built")
        files.append(source)
    return tuple(files)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_CODE: list[str] = []


def _code_digest() -> str:
    """sha256 over facade's own modules: an artifact is only as good as the code that
    built it, and a development checkout keeps its version number across changes."""
    if not _CODE:
        digest = hashlib.sha256()
        package = Path(__file__).resolve().parents[1]  # facade/, every stage of it
        for module in sorted(package.rglob("*.py")):
            name = module.relative_to(package).as_posix()
            digest.update(name.encode() + b"\0" + module.read_bytes() + b"\0")
        _CODE.append(digest.hexdigest())
    return _CODE[0]


# -- frozen dataclasses <-> JSON --------------------------------------------------------


def encode(value: Any) -> Any:
    """A load-time value as JSON data: dataclasses become objects, tuples and sets lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(encode(v) for v in value)
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in an artifact")


def decode(kind: Any, data: Any) -> Any:
    """The inverse of `encode`, guided by the type annotations of the dataclasses."""
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(data, dict):
            raise TypeError(f"{kind.__name__} must be an object")
        hints = _hints(kind)
        names = {f.name for f in dataclasses.fields(kind)}
        if set(data) != names:
            raise ValueError(f"{kind.__name__} fields differ: {sorted(set(data) ^ names)}")
        return kind(**{name: decode(hints[name], value) for name, value in data.items()})
    if origin in (tuple, frozenset):
        if not isinstance(data, list):
            raise TypeError(f"expected a list, got {type(data).__name__}")
        args = typing.get_args(kind)
        item = args[0] if args else Any
        return origin(decode(item, v) for v in data)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(kind) if a is not type(None)]
        if data is None:
            return None
        classes = [a for a in arms if dataclasses.is_dataclass(a)]
        return decode(classes[0], data) if len(classes) == 1 else data
    return data  # str, int, bool, Literal, Any and JSON-shaped dicts come back as they are


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(kind: type) -> dict[str, Any]:
    if kind not in _HINTS:
        _HINTS[kind] = typing.get_type_hints(kind)
    return _HINTS[kind]
