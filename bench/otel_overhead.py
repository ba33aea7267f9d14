"""OpenTelemetry overhead in-process: the same enforced tool call with traces off and on.

Both run in one process against the same seeded database, interleaved call by call:

* **off**: ``Mediator.call_tool("list_tickets", {"limit": 20})`` on a pool opened while tracing
  was off (no psycopg instrumentation), with no tracer: what every deployment without
  ``TENANTGATE_OTEL`` runs.
* **on**: the same call on a pool opened with tracing on: the tool span, the psycopg span of its
  round trip, the scrubbing step and the SDK's batch processor, as ``tenantgate serve`` sets them
  up; the exporter discards what it is handed, so no network is timed.

Read p50/p99 at concurrency 1 and the ratio on / off.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from bench._common import Result, create_database, run_script, summary_ms
from bench.gate_overhead import ARGS, TOOL, Harness
from tenantgate.cli import pgserver
from tenantgate.mediator import tracing
from tenantgate.mediator.service import Mediator


class Discard(SpanExporter):
    """Takes spans and drops them: the export cost without a collector."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def _measure(h: Harness, smoke: bool) -> Result:
    n = 300 if smoke else 4000
    title = f"OpenTelemetry traces off vs on: enforced {TOOL}"
    result = Result("otel_overhead", title, smoke=smoke)
    off = await Mediator.start(h.settings(pool=1))
    exporter = Discard()
    tracing.enable(tracing.build_provider(exporter, batch=True))
    tracer: Any = tracing._tracer
    on = await Mediator.start(h.settings(pool=1))  # its connections are instrumented
    times: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for i in range(n + 50):
            for label, m in (("off", off), ("on", on)) if i % 2 else (("on", on), ("off", off)):
                tracing._tracer = tracer if label == "on" else None
                t0 = time.perf_counter()
                out = await m.call_tool(m.authenticate(h.opened.token), TOOL, ARGS)
                if i >= 50:
                    times[label].append(time.perf_counter() - t0)
                if out["isError"]:
                    raise AssertionError(f"call failed: {out['content']}")
        tracing._tracer = tracer
    finally:
        await on.close()
        await off.close()
        tracing.disable()
    stats = {k: summary_ms(v) for k, v in times.items()}
    for label in ("off", "on"):
        result.rows.append({"traces": label, **stats[label]})
    result.ratios["traces on / off p50 latency"] = stats["on"]["p50_ms"] / stats["off"]["p50_ms"]
    result.ratios["traces on / off p99 latency"] = stats["on"]["p99_ms"] / stats["off"]["p99_ms"]
    result.notes.append(
        f"on: {exporter.spans} spans handed to the exporter (a tool span and its database span "
        "per call, plus the pool's connect-time statement); off costs one attribute read per "
        "call. Interleaved call by call on one process; the machine is shared, read the ratio"
    )
    return result


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(create_database(server, "otel"), Path(tmp))
        return [asyncio.run(_measure(h, smoke))]


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
