"""`facade init`: a starter curation listing every operation of a spec, commented out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from facade.spec import load_spec
from facade.tools import tool_name_for

__all__ = ["starter_curation"]


def _yaml_string(text: str) -> str:
    return json.dumps(" ".join(text.split())[:200], ensure_ascii=False)


def starter_curation(spec_path: Path, output: Path) -> str:
    """The text of a starter curation for `spec_path`, to be written at `output`."""
    spec = load_spec(spec_path)
    relative = os.path.relpath(spec_path.resolve(), output.resolve().parent)
    refs = sorted(spec.by_label.values(),
                  key=lambda r: (r.method not in ("GET", "HEAD"), r.path, r.method))
    title = (spec.data.get("info") or {}).get("title") or "api"
    lines = [
        "# yaml-language-server: $schema=./schema/curation.schema.json",
        f"# Starter curation for {relative} ({len(refs)} operations).",
        "# Uncomment a FEW tools (3-10), give each a description an agent can act on,",
        "# then run `facade check` and `facade tools`.",
        "version: 1",
        f"spec: {json.dumps(relative)}",
        f"server: {{name: {_yaml_string(str(title))}}}",
        "backend:",
        "  base_url: ${BACKEND_URL:-http://127.0.0.1:8080}",
        "  # auth: {bearer_env: BACKEND_TOKEN}",
        "read_only: true",
        "tools:",
    ]
    seen: set[str] = set()
    for ref in refs:
        raw = spec.data["paths"][ref.path].get(ref.method.lower(), {})
        summary = raw.get("summary") if isinstance(raw, dict) else None
        name = tool_name_for(ref.operation_id, ref.method, ref.path)
        base, n = name, 2
        while name in seen:
            name, n = f"{base}_{n}"[:64], n + 1
        seen.add(name)
        key = ref.operation_id or ref.label
        note = "" if ref.method in ("GET", "HEAD") else "  # writes: needs read_only: false"
        lines.append(f"  # {name}:{note}")
        lines.append(f"  #   operation: {json.dumps(key)}")
        if isinstance(summary, str) and summary.strip():
            lines.append(f"  #   description: {_yaml_string(summary)}")
    if not refs:
        lines.append("  # (the spec has no operations)")
    return "\n".join(lines) + "\n"
