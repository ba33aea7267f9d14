"""Optional OpenTelemetry traces: one span per tools/call (and tools/list), with the psycopg span
of its one database round trip inside.

Off unless `TENANTGATE_OTEL=1`, or `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (`TENANTGATE_OTEL=0` keeps it off whatever else is
set). Needs the `otel` extra (`pip install 'tenantgate[otel]'`); spans leave through the OTLP/HTTP
exporter, configured by the standard `OTEL_EXPORTER_OTLP_*` variables.

What a span may carry: the tool name (only when it is a valid tool name), the decision, the org
id, the MCP method. Never a token, a session secret or an argument value: the psycopg spans carry
the statement text, whose values are placeholders (`capture_parameters` stays off, no SQL
commenter), and every exported span loses exception messages, stack traces and status
descriptions (a database error's text can quote a value), keeping the exception type.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from tenantgate.mediator.gate import TOOL_NAME

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from tenantgate.mediator.settings import Settings

MISSING = (
    "OpenTelemetry traces are on but not installed: install the otel extra, "
    "pip install 'tenantgate[otel]' (pipx: pipx install 'tenantgate[otel]'), "
    "or set TENANTGATE_OTEL=0"
)
MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.instrumentation.psycopg",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)
SERVICE_NAME = "tenantgate-mediator"
FAILED = frozenset({"error", "unavailable", "upstream_error"})
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

# the tracer while tracing is on; None (the default) costs one attribute read per call
_tracer: Any = None
_provider: Any = None


class TracingUnavailable(RuntimeError):
    """Traces were asked for but the OpenTelemetry packages are not installed."""


def wanted(settings: Settings) -> bool:
    """Whether this process should trace: TENANTGATE_OTEL decides when set, else an OTLP endpoint
    in the environment turns it on; OTEL_SDK_DISABLED=true always wins."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if settings.otel is not None:
        return settings.otel
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def active() -> bool:
    return _tracer is not None


def check(settings: Settings) -> None:
    """At start: raise TracingUnavailable when traces are wanted but the extra is missing."""
    if not wanted(settings):
        return
    for module in MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # a parent package is missing
            found = False
        if not found:
            raise TracingUnavailable(MISSING)


def configure(settings: Settings) -> bool:
    """Turn tracing on with the OTLP/HTTP exporter when wanted (once per process); True if on."""
    if _tracer is not None or not wanted(settings):
        return _tracer is not None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise TracingUnavailable(MISSING) from None
    enable(build_provider(OTLPSpanExporter(), batch=True))
    atexit.register(disable)  # flush what the batch processor still holds
    return True


def build_provider(exporter: SpanExporter, *, batch: bool) -> TracerProvider:
    """A tracer provider exporting through `exporter`, every span scrubbed first."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        raise TracingUnavailable(MISSING) from None
    from tenantgate.mediator.service import SERVER_VERSION

    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME,
            "service.version": SERVER_VERSION,
        }
    )
    provider = TracerProvider(resource=resource)
    scrubbed = _scrubbing(exporter)
    processor = BatchSpanProcessor(scrubbed) if batch else SimpleSpanProcessor(scrubbed)
    provider.add_span_processor(processor)
    return provider


def enable(provider: TracerProvider) -> None:
    """Trace through `provider`: psycopg connections opened from now on are instrumented."""
    global _tracer, _provider
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    instrumentor = PsycopgInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=provider,
        capture_parameters=False,
        enable_commenter=False,
        skip_dep_check=True,
    )
    _provider = provider
    _tracer = provider.get_tracer("tenantgate.mediator")


def disable() -> None:
    """Stop tracing: flush and shut the provider down, uninstrument psycopg (new connections)."""
    global _tracer, _provider
    if _tracer is None:
        return
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    instrumentor = PsycopgInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    provider, _tracer, _provider = _provider, None, None
    provider.shutdown()


def _span(method: str, name: Any, org: str, meta: dict[str, Any] | None) -> Any:
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    tool = name if isinstance(name, str) and TOOL_NAME.match(name) else None
    attributes: dict[str, str] = {"mcp.method.name": method, "tenantgate.org_id": str(org)}
    if tool is not None:
        attributes["gen_ai.tool.name"] = tool
        attributes["gen_ai.operation.name"] = "execute_tool"
    parent = None
    if meta and isinstance(meta.get("traceparent"), str):  # MCP: trace context rides in _meta
        carrier = {k: v for k, v in meta.items() if k in ("traceparent", "tracestate")}
        parent = propagate.extract({k: v for k, v in carrier.items() if isinstance(v, str)})
    return _tracer.start_as_current_span(
        f"{method} {tool}" if tool else method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )


def list_span(org: str) -> AbstractContextManager[Any]:
    return nullcontext() if _tracer is None else _span("tools/list", None, org, None)


async def traced_call(
    run: Callable[[], Awaitable[dict[str, Any]]],
    name: Any,
    org: str,
    meta: dict[str, Any] | None,
) -> dict[str, Any]:
    """Run one tools/call inside its span; the span ends with the call's decision."""
    from opentelemetry.trace import Status, StatusCode

    from tenantgate.mediator.observe import decision_of

    with _span("tools/call", name, org, meta) as span:
        result = await run()
        decision = decision_of(result)
        span.set_attribute("tenantgate.decision", decision)
        if decision != "allowed":
            span.set_attribute("error.type", decision)
        if decision in FAILED:
            span.set_status(Status(StatusCode.ERROR))
        return result


def _scrubbing(exporter: SpanExporter) -> SpanExporter:
    """`exporter`, behind a filter that drops what may quote a value: exception messages and
    stack traces in events, and status descriptions."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Status

    kept = ("exception.type", "exception.escaped")

    def scrub(span: ReadableSpan) -> ReadableSpan:
        events = [
            Event(e.name, {k: v for k, v in (e.attributes or {}).items() if k in kept},
                  e.timestamp)
            if e.name == "exception"
            else e
            for e in span.events
        ]
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=span.attributes,
            events=events,
            links=span.links,
            kind=span.kind,
            status=Status(span.status.status_code),
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    class Scrubbing(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return exporter.export([scrub(s) for s in spans])

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return exporter.force_flush(timeout_millis)

    return Scrubbing()
