"""Tracing's cost per call: facade in memory behind fastmcp's client, untraced (as without
the `otel` extra), then with the SDK and facade's spans (exported, batched, to nowhere),
then with the SDK but facade's own spans off (fastmcp's spans only).

OpenTelemetry allows one tracer provider per process and no going back, so the three are
measured in that order, each after its own warm-up, rather than interleaved. The off path's
own work (the checks facade makes per call when tracing is off) is also timed alone."""

from __future__ import annotations

import asyncio
import time
import timeit
from collections.abc import Sequence
from typing import Any

from calls import _facade_server, _timed
from lib import Options, backend, median, ms, percentile, table


def _off_path_ns() -> float:
    """ns per call of what facade adds when tracing is off: the call span and one
    attempt span (each a flag check and a shared nullcontext) and `answered`."""
    from facade.call import tracing
    from facade.call.events import CallRecord

    record = CallRecord(tool="t")
    headers: dict[str, str] = {}

    def once() -> None:
        with tracing.call_span(record), tracing.attempt_span(
                None, 0, headers, None) as span:  # type: ignore[arg-type]
            tracing.answered(span, 200)

    count = 200_000
    return min(timeit.repeat(once, number=count, repeat=5)) / count * 1e9


def _sdk() -> Any:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from facade.serve.span_export import Sanitized
    from facade.serve.tracing import install

    class Nowhere(SpanExporter):
        exported = 0

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            Nowhere.exported += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Sanitized(Nowhere())))
    install(provider)
    return provider


async def _measure(url: str, count: int) -> dict[str, list[float]]:
    from fastmcp import Client

    from facade.call import tracing

    results: dict[str, list[float]] = {}
    args = {"sku": "SKU-1042"}
    for name in ("untraced (no extra)", "traced: SDK + facade spans",
                 "SDK, facade spans off"):
        if name.startswith("traced"):
            provider = _sdk()
        elif name.startswith("SDK,"):
            tracing.enable(None)
        async with Client(_facade_server(url)) as client:
            async def call() -> Any:
                return await client.call_tool("get_item", args)

            for _ in range(50):
                await call()
            results[name] = await _timed(call, count)
    provider.shutdown()
    return results


def run(opts: Options) -> None:
    off_ns = _off_path_ns()
    with backend() as url:
        started = time.perf_counter()
        results = asyncio.run(_measure(url, opts.calls))
        took = time.perf_counter() - started
    base = median(results["untraced (no extra)"])
    rows = [[name, f"{len(s)}", ms(median(s)), ms(percentile(s, 99)),
             "-" if name.startswith("untraced") else ms(median(s) - base),
             f"{median(s) / base:.2f}x"] for name, s in results.items()]
    table("Tracing: per call, in-memory fastmcp Client → facade → loopback backend",
          ["variant", "calls", "p50", "p99", "added at p50", "ratio"], rows,
          [f"GET /items/{{sku}}, ~0.5 KB. Measured in this order ({took:.0f} s in all); "
           "'traced' makes fastmcp's SERVER span, facade's call span and one attempt span "
           "per call, batched to an exporter that drops them. With tracing off, facade's "
           f"added work per call, timed alone: {off_ns:.0f} ns. Target: untraced is "
           "today's call path (nothing measurable added)."])
