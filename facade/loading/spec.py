"""The OpenAPI document: version check, operation index, and curated-operation resolution.

The document is parsed once into plain data and indexed by operationId and by
`METHOD /path`. Nothing else is walked: an operation's parameters, body and responses are
resolved and validated (with openapi-pydantic's models, imported only for an operation a
pure-Python pre-check cannot vouch for) only when a tool asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from facade.errors import CurationError, Problem, SpecError, did_you_mean
from facade.loading.overlays import Overlay, apply_overlays
from facade.loading.precheck import plainly_valid_operation
from facade.loading.refs import RefResolver, read_document
from facade.loading.swagger2 import Conversion, convert

__all__ = ["METHODS", "OpenAPIDocument", "Operation", "Parameter", "label_of", "load_spec"]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_TYPES = ("application/json",)


def pointer_for(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True)
class OperationRef:
    """Where an operation is: enough to find it again, nothing resolved."""

    method: str  # upper case
    path: str
    operation_id: str | None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def pointer(self) -> str:
        return pointer_for("paths", self.path, self.method.lower())


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # path | query | header | cookie
    required: bool
    schema: Any  # raw OpenAPI schema (may hold $refs relative to `base`)
    base: Path
    description: str | None
    style: str
    explode: bool
    deprecated: bool
    example: Any = None
    allow_empty_value: bool = False


@dataclass(frozen=True)
class Body:
    media_type: str
    schema: Any
    base: Path
    required: bool
    description: str | None


@dataclass(frozen=True)
class Response:
    status: str
    media_type: str | None
    schema: Any
    base: Path


@dataclass(frozen=True)
class Operation:
    """One operation with its parameters, body and success response resolved."""

    ref: OperationRef
    summary: str | None
    description: str | None
    parameters: tuple[Parameter, ...]
    body: Body | None
    response: Response | None
    deprecated: bool
    operation_id: str | None = None  # as written, also where the index has not learnt it


_DEFAULT_STYLE = {"path": "simple", "query": "form", "header": "simple", "cookie": "form"}


class OpenAPIDocument:
    """An indexed OpenAPI 3.0/3.1 document (Swagger 2.0 is converted to 3.0 first)."""

    def __init__(self, file: Path, data: Any, *, display: str) -> None:
        self.file = file.resolve()
        self.display = display
        self.converted: Conversion | None = None  # from Swagger 2.0
        self.written = data  # the root document as written (overlays applied), unconverted
        self._curated: set[str] = set()
        files: dict[Path, Any] = {}
        if isinstance(data, dict) and "swagger" in data:
            self.converted = convert(self.file, data, display=display)
            data, files = self.converted.document, self.converted.files
        self.data = data
        self.version = _version(data, display)
        self.resolver = RefResolver(file, data, display=display, documents=files)
        self.by_label: dict[str, OperationRef] = {}
        self.by_id: dict[str, list[OperationRef]] = {}
        # Operations that are themselves `$ref`s to other files: their operationId is
        # only known once resolved, which we do on the first id lookup that misses.
        self._unresolved: list[OperationRef] = []
        self._searched: set[str] = set()  # ids every operation that may hold was read for
        self._op_texts: dict[str, str | None] = {}  # see _might_define
        self._index()

    def _index(self) -> None:
        paths = self.data.get("paths") or {}
        if not isinstance(paths, dict):
            raise SpecError(self.display, "`paths` must be a mapping", pointer="#/paths")
        for path, item in paths.items():
            item, _ = self._deref(item, self.file)
            if not isinstance(item, dict):
                continue
            for method in METHODS:
                op = item.get(method)
                if not isinstance(op, dict):
                    continue
                op_id = op.get("operationId") if isinstance(op.get("operationId"), str) else None
                ref = OperationRef(method.upper(), str(path), op_id)
                self.by_label[ref.label] = ref
                if op_id:
                    self.by_id.setdefault(op_id, []).append(ref)
                elif "$ref" in op:
                    self._unresolved.append(ref)

    def _resolve_ids(self, key: str | None = None) -> None:
        """Learn the operationIds of operations that are `$ref`s: all of them, or (given
        `key`) every one whose file might hold `key`. A multi-file spec refers to hundreds
        of operation files; parsing only those that can matter saves most of a start."""
        if key is not None:
            self._searched.add(key)
        left = []
        for ref in self._unresolved:
            if key is not None and not self._might_define(ref, key):
                left.append(ref)
                continue
            self._op_texts.pop(ref.label, None)
            op, _ = self._raw(ref)
            op_id = op.get("operationId") if isinstance(op, dict) else None
            if isinstance(op_id, str):
                named = OperationRef(ref.method, ref.path, op_id)
                self.by_label[ref.label] = named
                self.by_id.setdefault(op_id, []).append(named)
        self._unresolved = left

    def _might_define(self, ref: OperationRef, key: str) -> bool:
        """False only when the file an operation `$ref` names cannot spell `key` as its
        operationId: a YAML file that is the operation itself (no `#` pointer, not itself
        a `$ref`), without `key` in its text and without escapes that could spell it."""
        if "'" in key or '"' in key:
            return True
        if ref.label not in self._op_texts:
            self._op_texts[ref.label] = self._op_text(ref)
        text = self._op_texts[ref.label]
        return text is None or key in text

    def _op_text(self, ref: OperationRef) -> str | None:
        """The text of the YAML file that is this operation, when it is one that
        `_might_define` can rule on; else None."""
        item, base = self._deref(self.data["paths"][ref.path], self.file)
        target = item[ref.method.lower()].get("$ref") if isinstance(item, dict) else None
        if not isinstance(target, str) or "#" in target:
            return None
        try:
            text = (base.parent / unquote(target)).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return None  # resolving it reports the problem (a remote ref lands here too)
        head = text.lstrip()
        if "\\" in text or head.startswith(("{", "[", "$ref", '"$ref"', "'$ref'")):
            return None
        return text

    def _raw(self, ref: OperationRef) -> tuple[Any, Path]:
        item, base = self._deref(self.data["paths"][ref.path], self.file)
        return self._deref(item[ref.method.lower()], base)

    def find(self, key: str) -> OperationRef | list[OperationRef] | None:
        """Look an operation up by operationId or `METHOD /path`; a list when ambiguous."""
        label = label_of(key)
        if label is not None:
            return self.by_label.get(label)
        if key not in self._searched and self._unresolved:
            self._resolve_ids(key)
        refs = self.by_id.get(key)
        if refs is None:
            return None
        return refs[0] if len(refs) == 1 else refs

    def suggest(self, key: str, methods: Collection[str] | None = None) -> str | None:
        """"did you mean …" for an unknown operation, among those with one of `methods`."""
        label = label_of(key)
        if label is None and self._unresolved:
            self._resolve_ids()
        refs = self.by_label if label is not None else \
            {op_id: refs[0] for op_id, refs in self.by_id.items()}
        return did_you_mean(label or key, [name for name, ref in refs.items()
                                           if methods is None or ref.method in methods])

    def operation(self, ref: OperationRef) -> Operation:
        """Resolve one operation; raise `SpecError` (with its JSON pointer) when malformed."""
        self._curated.add(ref.label)
        error = self.converted.error(ref.label) if self.converted else None
        if error is not None:
            raise error
        item, item_base = self._deref(self.data["paths"][ref.path], self.file)
        raw, base = self._deref(item[ref.method.lower()], item_base)
        params = self._parameters(item, item_base, raw, base, ref)
        body = self._body(raw, base, ref)
        self._validate(ref, raw, params, body)
        return Operation(
            ref=ref,
            summary=raw.get("summary"),
            description=raw.get("description"),
            parameters=tuple(params),
            body=body,
            response=self._response(raw, base),
            deprecated=bool(raw.get("deprecated", False)),
            operation_id=op_id if isinstance(op_id := raw.get("operationId"), str) else None,
        )

    def conversion_warnings(self) -> list[Problem]:
        """What a Swagger 2.0 conversion lost in operations not resolved so far."""
        return self.converted.warnings(self._curated) if self.converted else []

    def _deref(self, value: Any, base: Path) -> tuple[Any, Path]:
        if isinstance(value, dict) and isinstance(value.get("$ref"), str):
            value, base, _ = self.resolver.resolve(value["$ref"], base)
        return value, base

    def _parameters(self, item: dict[str, Any], item_base: Path, raw: dict[str, Any],
                    base: Path, ref: OperationRef) -> list[Parameter]:
        merged: dict[tuple[str, str], Parameter] = {}
        for source, source_base in ((item.get("parameters") or [], item_base),
                                    (raw.get("parameters") or [], base)):
            for index, entry in enumerate(source):
                value, where = self._deref(entry, source_base)
                if not isinstance(value, dict) or "name" not in value or "in" not in value:
                    raise SpecError(self.display, "parameter needs `name` and `in`",
                                    pointer=f"{ref.pointer}/parameters/{index}")
                param = self._parameter(value, where)
                merged[(param.name, param.location)] = param  # operation level wins
        return list(merged.values())

    def _parameter(self, value: dict[str, Any], base: Path) -> Parameter:
        location = str(value["in"])
        schema = value.get("schema")
        if schema is None and isinstance(value.get("content"), dict):
            media: dict[str, Any] = next(iter(value["content"].values()), {}) or {}
            schema = media.get("schema")
        style = value.get("style") or _DEFAULT_STYLE.get(location, "form")
        return Parameter(
            name=str(value["name"]),
            location=location,
            required=bool(value.get("required", location == "path")),
            schema=schema if schema is not None else {},
            base=base,
            description=value.get("description"),
            style=str(style),
            explode=bool(value.get("explode", style == "form")),
            deprecated=bool(value.get("deprecated", False)),
            example=value.get("example"),
            allow_empty_value=bool(value.get("allowEmptyValue", False)),
        )

    def _body(self, raw: dict[str, Any], base: Path, ref: OperationRef) -> Body | None:
        if "requestBody" not in raw:
            return None
        body, where = self._deref(raw["requestBody"], base)
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, dict) or not content:
            return None
        media_type = _pick_media_type(content)
        media, _ = self._deref(content[media_type] or {}, where)
        return Body(media_type, (media or {}).get("schema", {}), where,
                    bool(body.get("required", False)), body.get("description"))

    def _response(self, raw: dict[str, Any], base: Path) -> Response | None:
        responses = raw.get("responses") or {}
        for status in sorted(str(s) for s in responses):
            if status.startswith("2") or status == "default":
                resp, where = self._deref(responses.get(status) or responses.get(int(status)
                                          if status.isdigit() else status), base)
                content = (resp or {}).get("content") or {}
                if not content:
                    return Response(status, None, None, where)
                media_type = _pick_media_type(content)
                media, _ = self._deref(content[media_type] or {}, where)
                return Response(status, media_type, (media or {}).get("schema"), where)
        return None

    def _validate(self, ref: OperationRef, raw: dict[str, Any], params: list[Parameter],
                  body: Body | None) -> None:
        """Check the operation's structure: the pre-check, else openapi-pydantic's models."""
        shape: dict[str, Any] = {
            "parameters": [{"name": p.name, "in": p.location, "required": p.required,
                            "schema": {}, "style": p.style, "explode": p.explode}
                           for p in params],
            "responses": {"200": {"description": "-"}},
        }
        if body is not None:
            shape["requestBody"] = {"content": {body.media_type: {}}}
        for key in ("operationId", "summary", "description", "deprecated", "tags"):
            if key in raw:
                shape[key] = raw[key]
        if plainly_valid_operation(shape):
            return
        try:
            # Imported only here, for a shape the pre-check cannot vouch for: the models
            # take ~60 ms to import, a start from a `facade build` artifact validates no
            # operation, and real documents' operations nearly always pass the pre-check.
            # openapi-pydantic stays the authority: it decides, and words the error.
            from openapi_pydantic.v3 import v3_0, v3_1

            (v3_1 if self.version == "3.1" else v3_0).Operation.model_validate(shape)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = "/".join(str(p) for p in err["loc"][:2])
            raise SpecError(self.display, f"invalid operation: {where}: {err['msg']}",
                            pointer=ref.pointer) from None


def label_of(key: str) -> str | None:
    """`get  /items` → `GET /items`; None when `key` is not `METHOD /path`.

    Only an HTTP method followed by a path makes a label: operationIds may contain
    spaces (`find pet by id` in the OpenAPI examples).
    """
    method, _, path = key.strip().partition(" ")
    path = path.strip()
    if method.lower() not in METHODS or not path.startswith("/"):
        return None
    return f"{method.upper()} {path}"


def _pick_media_type(content: dict[str, Any]) -> str:
    for media_type in content:
        base = media_type.split(";")[0].strip().lower()
        if base in JSON_TYPES or base.endswith("+json"):
            return str(media_type)
    return str(next(iter(content)))


def _version(data: Any, display: str) -> str:
    if not isinstance(data, dict):
        raise SpecError(display, "not an OpenAPI document: the top level must be a mapping")
    version = str(data.get("openapi", ""))
    if version.startswith("3.0"):
        return "3.0"
    if version.startswith("3.1"):
        return "3.1"
    if not version:
        raise SpecError(display, "not an OpenAPI document: no `openapi` version field")
    raise SpecError(display, f"OpenAPI {version} is not supported; facade reads 3.0 and 3.1")


def locate_spec(config: Path, spec: str) -> tuple[Path, str]:
    """Where a curation's `spec` is (relative to the curation file), and how to show it:
    relative to the working directory, or as written when it is absolute."""
    path = config.parent / spec
    return path, str(path) if Path(spec).is_absolute() else os.path.relpath(path)


def load_spec(path: Path, display: str | None = None, overlays: Sequence[Overlay] = ()
              ) -> OpenAPIDocument:
    """Parse an OpenAPI document, apply `overlays` to it (before a Swagger 2.0 one is
    converted), and index it.

    Raises:
        SpecError: the document cannot be read or used.
        CurationError: an overlay cannot be applied (every problem, each in its overlay).
    """
    display = display or str(path)
    data = read_document(path, display)
    if overlays:
        problems = apply_overlays(data, overlays)
        if problems:
            raise CurationError(overlays[0].display, problems)
    return OpenAPIDocument(path, data, display=display)
