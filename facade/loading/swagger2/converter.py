"""Swagger 2.0 conversion of a whole document, and of the nodes other files' refs reach."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from facade.errors import SpecError
from facade.loading.refs import RefResolver, pointer_tokens, walk_pointer
from facade.loading.swagger2.issues import Issue
from facade.loading.swagger2.nodes import (
    JSON,
    METHODS,
    OPERATION_KEYS,
    REMOTE,
    SECTIONS,
    At,
    extensions,
    media,
    relocate,
    security_scheme,
    servers,
)
from facade.loading.swagger2.parts import PartConverter

__all__ = ["Converter"]


class Converter(PartConverter):
    """One Swagger 2.0 document (and the files its refs reach) → OpenAPI 3.0."""

    def __init__(self, root: Path, data: dict[str, Any], display: str) -> None:
        self.root = root
        self.resolver = RefResolver(root, data, display=display)  # over the 2.0 files
        self.consumes = media(data.get("consumes"), JSON)
        self.produces = media(data.get("produces"), JSON)
        self.files: dict[Path, Any] = {}
        self.issues: dict[str, list[Issue]] = {}
        # Nodes of other files to convert in place: (file, pointer, kind) → context.
        self.claimed: dict[tuple[Path, str, str], Any] = {}
        self.queue: list[tuple[Path, str, str, Any]] = []
        self.parts: dict[Path, list[tuple[str, Any]]] = {}  # nodes put into each file

    # -- the document ------------------------------------------------------------------

    def document(self, data: dict[str, Any]) -> dict[str, Any]:
        at = At(self.root, self.root)
        out: dict[str, Any] = {"openapi": "3.0.3"}
        if "info" in data:
            out["info"] = data["info"]
        if found := servers(data):
            out["servers"] = found
        paths = data.get("paths", {})
        out["paths"] = {str(path): self.path_item(item, at.child("paths", str(path)), str(path))
                        for path, item in paths.items()} if isinstance(paths, dict) else paths
        if components := self.components(data, at):
            out["components"] = components
        for key in ("security", "tags", "externalDocs"):
            if key in data:
                out[key] = data[key]
        out.update(extensions(data))
        self.drain()
        return out

    def components(self, data: dict[str, Any], at: At) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        if isinstance(data.get("definitions"), dict):
            out["schemas"] = {name: self.schema(s, at) for name, s in data["definitions"].items()}
        for name, param in (data.get("parameters") or {}).items() if isinstance(
                data.get("parameters"), dict) else ():
            where = at.child("parameters", name)
            if isinstance(param, dict) and param.get("in") == "body":
                out.setdefault("requestBodies", {})[name] = self.body(param, where, self.consumes)
            elif isinstance(param, dict) and param.get("in") != "formData":
                # formData parameters have no 3.0 counterpart: operations inline them.
                out.setdefault("parameters", {})[name] = self.parameter(param, where)[0]
        if isinstance(data.get("responses"), dict):
            out["responses"] = {str(code): self.response(r, at.child("responses", code),
                                                         self.produces)
                                for code, r in data["responses"].items()}
        if isinstance(data.get("securityDefinitions"), dict):
            out["securitySchemes"] = {name: security_scheme(s) for name, s
                                      in data["securityDefinitions"].items()}
        return out

    def path_item(self, item: Any, at: At, path: str) -> Any:
        if not isinstance(item, dict):
            return item
        if isinstance(item.get("$ref"), str):
            return {**item, "$ref": self.ref(item["$ref"], at, "pathitem", path)}
        out: dict[str, Any] = {}
        shared: list[Any] = []
        pushed: list[tuple[dict[str, Any], At, Any]] = []
        issues: list[Issue] = []
        params = item.get("parameters")
        for i, entry in enumerate(params if isinstance(params, list) else []):
            converted = self.parameter_entry(entry, at.child("parameters", i), issues, pushed)
            if converted is not None:
                shared.append(converted)
        if shared:
            out["parameters"] = shared
        for method in METHODS:
            if method in item:
                out[method] = self.operation(item[method], at.child(method), path, method,
                                             pushed, issues)
        out.update(extensions(item))
        return out

    # -- operations --------------------------------------------------------------------

    def operation(self, op: Any, at: At, path: str, method: str,
                  inherited: list[tuple[dict[str, Any], At, Any]],
                  shared_issues: list[Issue]) -> Any:
        if not isinstance(op, dict):
            return op
        issues = list(shared_issues)
        consumes = media(op.get("consumes"), self.consumes)
        produces = media(op.get("produces"), self.produces)
        out = {k: op[k] for k in OPERATION_KEYS if k in op}
        params: list[Any] = []
        bodies: list[tuple[dict[str, Any], At, Any]] = []
        entries = op.get("parameters")
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            converted = self.parameter_entry(entry, at.child("parameters", i), issues, bodies)
            if converted is not None:
                params.append(converted)
        own = {(b[0].get("name"), b[0].get("in")) for b in bodies}
        bodies += [b for b in inherited if (b[0].get("name"), b[0].get("in")) not in own]
        if params:
            out["parameters"] = params
        if bodies:
            out["requestBody"] = self.request_body(bodies, consumes, at, issues)
        out["responses"] = self.responses(op.get("responses"), at.child("responses"), produces)
        out.update({k: op[k] for k in ("deprecated", "security") if k in op})
        out.update(extensions(op))
        if issues:
            self.issues.setdefault(f"{method.upper()} {path}", []).extend(issues)
        return out

    def ref(self, ref: str, at: At, kind: str, context: Any) -> Any:
        """`ref` rewritten for where the converted node lands; other files' targets are
        queued for conversion in place. None when the target, a response, must be copied
        because this user's `produces` differ from those it was converted with."""
        where, hashed, pointer = ref.partition("#")
        if REMOTE.match(where):
            return ref  # refused by facade.loading.refs when resolved
        target = (at.base.parent / unquote(where)).resolve() if where else at.base
        try:
            new = self.pointer(target, pointer)
        except (SpecError, KeyError):
            return ref  # facade.loading.refs names the missing file or target when resolved
        if target == self.root:
            if kind == "response" and context != self.produces:
                return None
        else:
            key = (target, pointer, kind)
            if key not in self.claimed:
                self.claimed[key] = context
                self.queue.append((target, pointer, kind, context))
            elif self.claimed[key] != context:
                if kind == "response":
                    return None
                self.queue.append((target, pointer, kind, context))  # its issues, per path
        if at.base == at.home:
            prefix = where
        else:
            prefix = "" if target == at.home else \
                Path(os.path.relpath(target, at.home.parent)).as_posix()
        if not prefix and not hashed:
            return "#"
        return prefix + (f"#{new}" if hashed else "")

    def pointer(self, target: Path, pointer: str) -> str:
        """`/definitions/X/…` → `/components/schemas/X/…` (and so on) in `target`."""
        parts = pointer.split("/")
        if len(parts) < 3 or parts[0] != "" or parts[1] not in SECTIONS:
            return pointer
        section = self.resolver.document(target).get(parts[1]) \
            if isinstance(self.resolver.document(target), dict) else None
        if not isinstance(section, dict):
            return pointer
        name = SECTIONS[parts[1]]
        if parts[1] == "parameters":
            param = section.get(parts[2].replace("~1", "/").replace("~0", "~"))
            if isinstance(param, dict) and param.get("in") == "body":
                name = "requestBodies"
        return "/".join(("", "components", name, *parts[2:]))

    def drain(self) -> None:
        """Convert, in place in a copy of their file, the nodes other files' refs reach."""
        while self.queue:
            target, pointer, kind, context = self.queue.pop()
            try:
                node = walk_pointer(self.resolver.document(target), pointer_tokens(pointer))
            except (SpecError, KeyError):
                continue  # facade.loading.refs reports it when the ref is resolved
            at = At(target, target, tuple(pointer_tokens(pointer)))
            if kind == "schema":
                converted = self.schema(node, at)
            elif kind == "parameter":
                converted = self.parameter_node(node, at)
            elif kind == "response":
                converted = self.response(node, at, context)
            else:
                converted = self.path_item(node, at, context)
            self.put(target, self.pointer(target, pointer), converted)

    def put(self, target: Path, pointer: str, value: Any) -> None:
        """Place a converted node in its file's converted copy. A whole file converted
        after some of its nodes keeps them: they are placed again."""
        if pointer == "":
            self.files[target] = relocate(value)
            for earlier, node in self.parts.get(target, []):
                self.place(target, earlier, node)
            return
        self.parts.setdefault(target, []).append((pointer, value))
        self.place(target, pointer, value)

    def place(self, target: Path, pointer: str, value: Any) -> None:
        if target not in self.files:
            self.files[target] = relocate(copy.deepcopy(self.resolver.document(target)))
        *parents, last = pointer_tokens(pointer)
        try:
            node = walk_pointer(self.files[target], parents)
            if isinstance(node, list):
                node[int(last)] = value
            else:
                node[last] = value
        except (KeyError, ValueError, IndexError, TypeError):
            pass  # not where a ref can reach: facade.loading.refs reports the ref if it is used
