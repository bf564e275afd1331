"""Load time: text that reaches the model is checked before it does.

Descriptions, titles, enum values and examples come from a spec nobody here fully controls.
Invisible characters (control, bidi overrides, zero-width, Unicode tag characters) can
hide text from a reviewer while the model reads it: they are removed, with a warning.
Phrasing that reads like an instruction to the model ("ignore previous instructions") is
reported, not changed: a curator decides, usually by writing the tool's `description`.
A description over `MAX_DESCRIPTION_BYTES` (a tool's or an argument's, from the curation or
the spec) is a load error: every description is sent with every `tools/list`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_DESCRIPTION_BYTES", "TextFindings", "clean_schema", "clean_text", "oversized"]

MAX_DESCRIPTION_BYTES = 8 * 1024  # UTF-8; 8x the longest some model APIs accept

_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
# Each pattern with words one of which any match holds: the pattern runs only on text that
# has one (a casefolded substring test), which spares most descriptions all the regexes.
_INSTRUCTIONS = [(words, re.compile(p, re.IGNORECASE)) for words, p in (
    (("ignor", "disregard", "forget", "overrid"),
     r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|"
     r"all|any|other)\b[^.\n]{0,30}\b(instructions?|prompts?|rules|directions|guidelines)\b"),
    (("system prompt",), r"\bsystem prompt\b"),
    (("<",), r"<\s*/?\s*(system|instructions?|important|prompt)\s*>"),
    (("user",), r"\b(do not|don't|never)\s+(tell|inform|mention|reveal)\b[^.\n]{0,30}\buser\b"),
    (("you",), r"\byou (must|should) (always |now |first )?(call|invoke)\b"),
    (("token", "password", "secret", "credential", "api", "conversation", "chat history"),
     r"\b(send|post|forward|exfiltrate|upload)\b[^.\n]{0,60}\b(tokens?|passwords?|secrets?|"
     r"credentials?|api[ _-]?keys?|conversation|chat history)\b"),
    (("before",), r"\bbefore (using|calling) (this|any other) tool\b"),
)]
_TEXT_KEYS = ("description", "title", "summary")
_VALUE_KEYS = ("enum", "examples", "default", "const", "example")


@dataclass
class TextFindings:
    """What one check found, by kind; `where` names the place in the tool."""

    invisible: dict[str, set[str]] = field(default_factory=dict)  # where → character names
    instructions: dict[str, str] = field(default_factory=dict)  # where → the phrase

    def __bool__(self) -> bool:
        return bool(self.invisible or self.instructions)

    def messages(self) -> Iterator[tuple[str, str]]:
        """Each finding's kind (a problem code) and message."""
        for where, names in self.invisible.items():
            shown = ", ".join(sorted(names)[:4]) + (", …" if len(names) > 4 else "")
            yield "text/invisible-characters", (
                f"{where} held invisible characters that would reach the model ({shown}); "
                "they were removed")
        for where, phrase in self.instructions.items():
            yield "text/instruction-like", (
                f"{where} reads like an instruction to the model ({phrase!r}); review it, "
                   "and override it with a `description` in the curation if it is not meant "
                   "for the model")


def oversized(text: str) -> str | None:
    """"is N bytes, over the cap" when `text` is too long to be a description, else None."""
    size = len(text.encode())
    if size <= MAX_DESCRIPTION_BYTES:
        return None
    return (f"is {size:,} bytes, over the {MAX_DESCRIPTION_BYTES // 1024} KB "
            f"({MAX_DESCRIPTION_BYTES:,} bytes) cap on descriptions")


def _char_name(c: str) -> str:
    return f"U+{ord(c):04X} {unicodedata.name(c, 'control character')}"


def clean_text(text: str, where: str, findings: TextFindings) -> str:
    """`text` without invisible characters; what it held is added to `findings`."""
    found = _INVISIBLE.findall(text)
    if found:
        findings.invisible.setdefault(where, set()).update(_char_name(c) for c in found)
        text = _INVISIBLE.sub("", text)
    lowered = text.casefold()
    for words, pattern in _INSTRUCTIONS:
        match = pattern.search(text) if any(w in lowered for w in words) else None
        if match:
            findings.instructions.setdefault(where, match.group(0)[:80])
            break
    return text


def clean_schema(schema: Any, where: str, findings: TextFindings) -> Any:
    """A copy of a JSON Schema whose human-readable strings went through `clean_text`."""
    if isinstance(schema, list):
        return [clean_schema(s, where, findings) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _TEXT_KEYS and isinstance(value, str):
            out[key] = clean_text(value, where, findings)
        elif key in _VALUE_KEYS:
            out[key] = _clean_values(value, where, findings)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {}
            for name, sub in value.items():
                if _INVISIBLE.search(name):
                    findings.invisible.setdefault(f"{where} (property {name!r})", set()).update(
                        _char_name(c) for c in _INVISIBLE.findall(name))
                out[key][name] = clean_schema(sub, f"{where}", findings)
        else:
            out[key] = clean_schema(value, where, findings)
    return out


def _clean_values(value: Any, where: str, findings: TextFindings) -> Any:
    if isinstance(value, str):
        return clean_text(value, where, findings)
    if isinstance(value, list):
        return [_clean_values(v, where, findings) for v in value]
    return value
