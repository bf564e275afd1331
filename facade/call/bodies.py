"""Call time: backend bodies, read and decoded within limits.

Compressed bodies are inflated here, piece by piece, so a compression bomb never expands
in memory past the cap; JSON is parsed strictly (no NaN or Infinity) and refused beyond
a nesting depth and a number of values.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import httpx

from facade.call.failures import UpstreamError, label
from facade.tools import ToolDefinition

__all__ = ["decode_json", "read_capped"]


def _decompressor(response: httpx.Response, tool: ToolDefinition) -> Any:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by its header
    raise UpstreamError(f"The backend's answer to {label(tool)} uses content encoding "
                        f"{encoding[:40]!r}, which facade does not accept")


def _inflate(decompressor: Any, raw: bytes, budget: int) -> Iterator[bytes]:
    """Decompress `raw` in pieces of at most `budget` + 1 bytes, so that a compression
    bomb never expands in memory past the cap."""
    data = raw
    while data:
        piece = decompressor.decompress(data, budget + 1)
        if piece:
            yield piece
        data = decompressor.unconsumed_tail
        if not piece and not data:
            return


async def read_capped(response: httpx.Response, limit: int, tool: ToolDefinition,
                       truncate: bool = False) -> bytes:
    """The decoded body, refused (or cut, for error bodies) past `limit` bytes. Memory
    stays near `limit`: compressed bodies are inflated piece by piece, here."""
    if response.is_stream_consumed:  # an in-memory transport read (and decoded) it already
        body = response.content
        if len(body) > limit and not truncate:
            raise UpstreamError(f"The backend's answer to {label(tool)} is larger than "
                                f"{limit:,} bytes; narrow the request (filters, a smaller "
                                "page)")
        return body[:limit]
    decompressor = _decompressor(response, tool)
    chunks: list[bytes] = []
    size = 0
    try:
        async for raw in response.aiter_raw():
            pieces = [raw] if decompressor is None else _inflate(decompressor, raw,
                                                                 limit - size)
            for chunk in pieces:
                size += len(chunk)
                if size > limit:
                    if truncate:
                        chunks.append(chunk[:limit - size + len(chunk)])
                        return b"".join(chunks)
                    raise UpstreamError(
                        f"The backend's answer to {label(tool)} is larger than {limit:,} "
                        "bytes; narrow the request (filters, a smaller page)")
                chunks.append(chunk)
    except zlib.error as exc:
        raise UpstreamError(f"The backend's answer to {label(tool)} could not be "
                            "decompressed") from exc
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # RFC 8259 has no NaN or Infinity


def decode_json(tool: ToolDefinition, body: bytes, max_depth: int = 64,
                max_items: int = 200_000) -> Any:
    """Parse a JSON answer, refusing documents nested or sized beyond the caps."""
    if not body.strip():
        return None
    what = label(tool)
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise UpstreamError(f"The backend's answer to {what} is nested deeper than "
                            f"{max_depth} levels") from None
    except ValueError as exc:
        raise UpstreamError(f"The backend's answer to {what} is not valid JSON") from exc
    if len(body) <= max_items and body.count(b"[") + body.count(b"{") < max_depth:
        # Each value takes a byte, each level below the top a bracket: within both caps.
        return data
    # Level by level, looking only into containers: a scalar adds to the count of its
    # parent's level, and nothing below it can break a cap.
    count, depth = 1, 1
    level = [data] if isinstance(data, (dict, list)) else []
    while level:
        size, below = 0, []
        for node in level:
            values = node.values() if isinstance(node, dict) else node
            size += len(values)
            below += [v for v in values if isinstance(v, (dict, list))]
        if size:
            count, depth = count + size, depth + 1
            if depth > max_depth:
                raise UpstreamError(f"The backend's answer to {what} is nested deeper than "
                                    f"{max_depth} levels")
            if count > max_items:
                raise UpstreamError(f"The backend's answer to {what} has more than "
                                    f"{max_items:,} values; narrow the request")
        level = below
    return data
