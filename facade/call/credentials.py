"""Call time: the backend's service credential, from env vars or files.

An env var is read once, when the server starts. A file (Vault Agent, the Secrets Store CSI
driver, a Kubernetes Secret volume) is read at start and then looked at (`os.stat`, no read)
before each use: when it has changed it is read again, so a rotated secret takes effect
without a restart. At start an unset variable, or an unreadable or empty file, is a
`MissingCredentialError`; after a rotation an unreadable or empty file keeps the last good
value, with one warning per change of the file. Every value read is registered with
`facade.call.scrub`.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping

from facade.call.failures import MissingCredentialError
from facade.call.scrub import register_secrets

__all__ = ["Secret", "ServiceCredentials"]

logger = logging.getLogger("facade.credentials")
_MAX_SECRET_BYTES = 64 * 1024  # a secret file larger than this is a mistake, not a secret


class Secret:
    """One secret value, named by an env var (`env`) or a file path (`file`)."""

    def __init__(self, what: str, *, env: str | None = None, file: str | None = None,
                 environ: Mapping[str, str]) -> None:
        self.what, self.file = what, file
        self._seen: tuple[int, ...] | None = None
        if file is None:
            assert env is not None
            value = environ.get(env)
            if not value:
                raise MissingCredentialError(f"{what}: environment variable {env!r} is not set")
            self._value = value
        else:
            self._seen = _signature(file)
            value, why = _read(file)
            if value is None:
                raise MissingCredentialError(f"{what}: the file {file} {why}")
            self._value = value
        register_secrets([self._value])

    def value(self) -> str:
        """The current value: a file that changed since it was last read is read again."""
        if self.file is None:
            return self._value
        seen = _signature(self.file)
        if seen == self._seen:  # unchanged, or still missing (warned once already)
            return self._value
        self._seen = seen
        value, why = _read(self.file)
        if value is None:
            logger.warning("%s: the file %s %s; keeping the last good value", self.what,
                           self.file, why)
            return self._value
        if value != self._value:
            register_secrets([value])
            logger.info("%s: read the rotated secret from %s", self.what, self.file)
            self._value = value
        return self._value


def _signature(path: str) -> tuple[int, ...] | None:
    """What changes when a file is replaced or rewritten (a Kubernetes volume swaps a
    symlink, which `stat` follows); None when it cannot be looked at."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _read(path: str) -> tuple[str | None, str]:
    """The file's text without surrounding whitespace, or None and why not."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_SECRET_BYTES + 1)
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or type(exc).__name__})"
    if len(data) > _MAX_SECRET_BYTES:
        return None, f"is larger than {_MAX_SECRET_BYTES} bytes"
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    if not text:
        return None, "is empty"
    return text, ""


class ServiceCredentials:
    """The headers of `backend.auth`'s service credential, current at each call."""

    def __init__(self, auth: Mapping[str, str] | None, environ: Mapping[str, str]) -> None:
        self._auth = dict(auth or {})
        self._secrets: dict[str, Secret] = {}
        for kind in ("bearer", "api_key", "basic_user", "basic_password"):
            env, file = self._auth.get(f"{kind}_env"), self._auth.get(f"{kind}_file")
            if env is not None or file is not None:
                key = f"{kind}_file" if file is not None else f"{kind}_env"
                self._secrets[kind] = Secret(f"backend.auth.{key}", env=env, file=file,
                                             environ=environ)
        self._values: tuple[str, ...] = ()
        self._headers: dict[str, str] = {}
        self.headers()

    def headers(self) -> dict[str, str]:
        """The auth headers to send; rebuilt only when a secret has changed."""
        values = tuple(s.value() for s in self._secrets.values())
        if values != self._values:
            self._values, self._headers = values, self._build()
        return self._headers

    def _build(self) -> dict[str, str]:
        s = self._secrets
        if "bearer" in s:
            return {"Authorization": f"Bearer {s['bearer'].value()}"}
        if "api_key" in s:
            return {self._auth.get("header", "X-Api-Key"): s["api_key"].value()}
        if "basic_user" in s:
            pair = f"{s['basic_user'].value()}:{s['basic_password'].value()}"
            encoded = base64.b64encode(pair.encode()).decode()
            register_secrets([encoded])
            return {"Authorization": "Basic " + encoded}
        return {}
