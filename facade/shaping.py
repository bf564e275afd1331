"""Response shaping: `include`, `redact` and `max_items`, on data and on schemas alike.

Paths are dotted (`supplier.contact.email`); `[]` marks an array (`tags[].name`) and is
optional, because arrays are always traversed: a path applies to every element. A
`redact` entry without a dot or `[]` is a field-name glob (`*_token`) that matches keys
at any depth, compared case-insensitively, so `Password` and `PASSWORD` go too.

The same trees prune the output schema at load time, so a redacted field is absent from
both the result and the schema the client sees: its properties, the `required` names, and
the values a schema carries (`examples`, `default`, `const`), which are shaped as data is.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PathTree", "Shaper", "parse_path"]

PathTree = dict[str, "PathTree | bool"]
_MEMO_SIZE = 4096  # distinct keys remembered per tool; beyond that, matched each time


def parse_path(path: str) -> list[str]:
    """`tags[].name` → `["tags", "name"]`; raises ValueError on an empty segment."""
    segments = path.strip().split(".")
    parts = [seg.removesuffix("[]") for seg in segments]
    if not path.strip() or any(p == "" and seg != "[]" for p, seg in zip(parts, segments)) \
            or any("[" in p or "]" in p for p in parts):
        raise ValueError(f"malformed path {path!r}")
    return [p for p in parts if p] or [""]


def build_tree(paths: Iterable[str], *, fold_case: bool = False) -> PathTree:
    tree: PathTree = {}
    for path in paths:
        node = tree
        parts = parse_path(path.lower() if fold_case else path)
        for part in parts[:-1]:
            child = node.get(part)
            if child is True:
                break
            node = node.setdefault(part, {})  # type: ignore[assignment]
        else:
            node[parts[-1]] = True
    return tree


def is_glob(entry: str) -> bool:
    return "." not in entry and "[]" not in entry


@dataclass(frozen=True)
class Shaper:
    """The compiled shaping rules of one tool."""

    include: PathTree | None = None
    redact_paths: PathTree = field(default_factory=dict)
    redact_globs: tuple[str, ...] = ()
    max_items: int | None = None

    @classmethod
    def build(cls, include: list[str] | None, redact: Iterable[str],
              max_items: int | None) -> Shaper:
        redact = list(redact)
        return cls(
            include=build_tree(include) if include is not None else None,
            # Redaction compares keys case-insensitively (`Contact` goes with `contact`);
            # `include` is an allow-list, exact by nature: what it misses is dropped.
            redact_paths=build_tree((e for e in redact if not is_glob(e)), fold_case=True),
            redact_globs=tuple(e.lower() for e in redact if is_glob(e)),
            max_items=max_items,
        )

    def __post_init__(self) -> None:
        # Per call, every key of a result is tested against the globs: one compiled regex,
        # and a bounded memo, since the same keys come back in every item of a list.
        pattern = "|".join(fnmatch.translate(g) for g in self.redact_globs)
        object.__setattr__(self, "_globs", re.compile(pattern) if pattern else None)
        object.__setattr__(self, "_memo", {})

    def _redacted(self, key: str) -> bool:
        memo: dict[str, bool] = self._memo  # type: ignore[attr-defined]
        found = memo.get(key)
        if found is None:
            globs: re.Pattern[str] | None = self._globs  # type: ignore[attr-defined]
            found = globs is not None and globs.match(key.lower()) is not None
            if len(memo) < _MEMO_SIZE:
                memo[key] = found
        return found

    # -- data -------------------------------------------------------------------------

    def apply(self, value: Any, truncated: list[str]) -> Any:
        """Shape a decoded JSON value; `truncated` collects notes about cut arrays."""
        keep = self.include if self.include is not None else True
        return self._walk(value, keep, self.redact_paths, "", truncated)

    def _walk(self, value: Any, keep: PathTree | bool, paths: PathTree | bool, where: str,
              notes: list[str]) -> Any:
        # One pass for `include` (`keep`: the allow-list below here, True for everything)
        # and redaction. `where` names the place for truncation notes: only built when
        # arrays can be cut.
        track = self.max_items is not None
        if isinstance(value, dict):
            out = {}
            pairs = value.items() if not isinstance(keep, dict) else \
                [(k, value[k]) for k in keep if k in value]  # in the include's order
            globs = bool(self.redact_globs)
            below_paths = paths if isinstance(paths, dict) and paths else None
            for key, item in pairs:
                name = key if isinstance(key, str) else str(key)
                sub = below_paths.get(name.lower(), {}) if below_paths is not None else {}
                if sub is True or (globs and self._redacted(name)):
                    continue
                below = keep[key] if isinstance(keep, dict) else True
                if not isinstance(item, (dict, list)) or (
                        below is True and not sub and not globs and not track):
                    out[key] = item  # nothing below can change
                    continue
                out[key] = self._walk(item, below, sub, (f"{where}.{name}" if where else name)
                                      if track else "", notes)
            return out
        if isinstance(value, list):
            if self.max_items is not None and len(value) > self.max_items:
                notes.append(f"{where or 'result'}: {len(value)} items, showing the first "
                             f"{self.max_items}")
                value = value[: self.max_items]
            inner = f"{where}[]" if track else ""
            return [self._walk(item, keep, paths, inner, notes)
                    if isinstance(item, (dict, list)) else item for item in value]
        return value

    # -- schemas ------------------------------------------------------------------------

    def apply_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Prune an output schema the way `apply` prunes data."""
        defs = schema.get("$defs", {})
        if self.include is not None:
            schema = self._keep_schema(schema, self.include, defs, 0)
        if self.redact_paths or self.redact_globs:  # else skip walking what may be a MB
            schema = self._walk_schema(schema, self.redact_paths)
        return schema

    def _values(self, schema: dict[str, Any], out: dict[str, Any], keep: PathTree | bool,
                paths: PathTree | bool) -> None:
        """The values a schema node carries, shaped as data at that place would be."""
        for key in ("default", "const"):
            if key in schema:
                out[key] = self._walk(schema[key], keep, paths, "", [])
        if isinstance(schema.get("examples"), list):
            out["examples"] = [self._walk(v, keep, paths, "", []) for v in schema["examples"]]

    def _walk_schema(self, schema: Any, paths: PathTree | bool) -> Any:
        if not isinstance(schema, dict):
            return schema
        out = dict(schema)
        if isinstance(schema.get("properties"), dict):
            props = {}
            for name, sub_schema in schema["properties"].items():
                sub = paths.get(name.lower(), {}) if isinstance(paths, dict) else {}
                if sub is True or self._redacted(name):
                    continue
                props[name] = self._walk_schema(sub_schema, sub)
            out["properties"] = props
        if isinstance(schema.get("required"), list):
            out["required"] = [r for r in schema["required"] if not isinstance(r, str) or not (
                (isinstance(paths, dict) and paths.get(r.lower()) is True) or self._redacted(r))]
        self._values(schema, out, True, paths)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                out[key] = self._walk_schema(schema[key], paths)
        for key in ("allOf", "anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                out[key] = [self._walk_schema(s, paths) for s in schema[key]]
        if isinstance(schema.get("$defs"), dict):
            out["$defs"] = {k: self._walk_schema(v, {}) for k, v in schema["$defs"].items()}
        return out

    def _keep_schema(self, schema: Any, tree: PathTree | bool, defs: dict[str, Any],
                     depth: int) -> Any:
        if tree is True or not isinstance(schema, dict) or depth > 64:
            return schema
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            schema = defs.get(ref.removeprefix("#/$defs/"), {})
        out = {k: v for k, v in schema.items() if k not in ("properties", "$defs", "$ref")}
        if isinstance(schema.get("items"), dict):
            out["items"] = self._keep_schema(schema["items"], tree, defs, depth + 1)
        for key in ("allOf", "anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                out[key] = [self._keep_schema(s, tree, defs, depth + 1) for s in schema[key]]
        props = schema.get("properties")
        if isinstance(props, dict) and isinstance(tree, dict):
            out["properties"] = {k: self._keep_schema(props[k], sub, defs, depth + 1)
                                 for k, sub in tree.items() if k in props}
        if isinstance(schema.get("additionalProperties"), dict):
            out["additionalProperties"] = self._keep_schema(schema["additionalProperties"],
                                                            tree, defs, depth + 1)
        if isinstance(schema.get("required"), list) and isinstance(tree, dict):
            out["required"] = [r for r in schema["required"] if r in tree]
        self._values(schema, out, tree, {})
        if "$defs" in schema and _uses_defs(out):
            out["$defs"] = schema["$defs"]
        return out


def _uses_defs(schema: Any) -> bool:
    if isinstance(schema, dict):
        if isinstance(schema.get("$ref"), str):
            return True
        return any(_uses_defs(v) for k, v in schema.items() if k != "$defs")
    if isinstance(schema, list):
        return any(_uses_defs(v) for v in schema)
    return False


def schema_has_path(schema: Any, parts: list[str], defs: dict[str, Any], depth: int = 0
                    ) -> bool | None:
    """Whether `parts` names a property in `schema`: True, False, or None (cannot tell)."""
    if not parts:
        return True
    if not isinstance(schema, dict) or depth > 64:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return schema_has_path(defs.get(ref.removeprefix("#/$defs/")), parts, defs, depth + 1)
    branches = [s for k in ("allOf", "anyOf", "oneOf") for s in schema.get(k) or []]
    if isinstance(schema.get("items"), dict):
        branches.append(schema["items"])
    answers = [schema_has_path(b, parts, defs, depth + 1) for b in branches]
    props = schema.get("properties")
    if isinstance(props, dict) and parts[0] in props:
        answers.append(schema_has_path(props[parts[0]], parts[1:], defs, depth + 1))
    if True in answers:
        return True
    if None in answers or (not isinstance(props, dict) and not branches):
        return None
    if isinstance(schema.get("additionalProperties"), dict):
        return None
    return False
