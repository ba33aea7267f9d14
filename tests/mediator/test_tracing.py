"""OpenTelemetry traces with the SDK's in-memory exporter, on a real loopback server and database:
one span per tools/call with its one psycopg round trip inside, nothing secret in any span."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tenantgate.mediator import tracing
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenVerifier
from tests.mediator.conftest import OpenFn

HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}
CANARY = "argument-value-canary-5c1e"


@pytest.fixture
def traced(request: pytest.FixtureRequest) -> Iterator[tuple[InMemorySpanExporter, str]]:
    """Tracing on (in-memory exporter) before the server's pool connects, then the server."""
    exporter = InMemorySpanExporter()
    tracing.enable(tracing.build_provider(exporter, batch=False))
    try:
        url: str = request.getfixturevalue("http_url")
        yield exporter, url
    finally:
        tracing.disable()


def rpc(url: str, token: str, method: str, params: dict[str, Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    r = httpx.post(url, json=body, headers={**HEADERS, "Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()["result"]


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def everything_said(span: ReadableSpan) -> str:
    parts = [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
    for event in span.events:
        parts += [event.name, repr(dict(event.attributes or {}))]
    parts.append(repr(dict(span.resource.attributes)))
    return " ".join(parts)


def test_each_tool_call_is_one_span_holding_its_one_database_round_trip(
    traced: tuple[InMemorySpanExporter, str], open_session: OpenFn, settings: Settings
) -> None:
    exporter, url = traced
    session = open_session("Acme")
    exporter.clear()  # connect-time statements of the pool are not calls
    assert rpc(url, session.token, "tools/call", {"name": "account_health"})["isError"] is False
    found = rpc(
        url, session.token, "tools/call", {"name": "search_tickets", "arguments": {"query": CANARY}}
    )
    assert found["isError"] is False
    refused = rpc(url, session.token, "tools/call", {"name": "list_tickets",
                                                     "arguments": {"status": "bogus"}})
    assert refused["isError"] is True
    spans = exporter.get_finished_spans()
    calls = [s for s in spans if s.name.startswith("tools/call")]
    assert [s.name for s in calls] == [
        "tools/call account_health",
        "tools/call search_tickets",
        "tools/call list_tickets",
    ]
    decisions = [(s.attributes or {}).get("tenantgate.decision") for s in calls]
    assert decisions == ["allowed", "allowed", "invalid_arguments"]
    claims = TokenVerifier(settings).verify(session.token)
    for call in calls:
        assert call.kind is SpanKind.SERVER
        assert call.parent is None
        attributes = call.attributes or {}
        assert attributes["mcp.method.name"] == "tools/call"
        assert attributes["tenantgate.org_id"] == claims.org_id
        (db,) = children(spans, call)  # exactly one round trip, inside the call's span
        assert db.kind is SpanKind.CLIENT
        db_attributes = db.attributes or {}
        assert db_attributes.get("db.system") == "postgresql"
        assert "tenantgate.call_tool(" in str(db_attributes.get("db.statement"))
        assert db.start_time is not None
        assert call.start_time is not None
        assert db.end_time is not None
        assert call.end_time is not None
        assert call.start_time <= db.start_time <= db.end_time <= call.end_time
    for span in spans:
        said = everything_said(span)
        for secret in (session.token, claims.session_secret, CANARY, "hunter"):
            assert secret not in said, (span.name, secret[:8])
        assert "password" not in said.lower()


def test_tools_list_is_one_span_with_its_round_trip(
    traced: tuple[InMemorySpanExporter, str], open_session: OpenFn
) -> None:
    exporter, url = traced
    token = open_session("Acme").token
    exporter.clear()
    assert rpc(url, token, "tools/list", {})["tools"]
    spans = exporter.get_finished_spans()
    (listing,) = [s for s in spans if s.name == "tools/list"]
    (db,) = children(spans, listing)
    assert "tenantgate.list_tools(" in str((db.attributes or {}).get("db.statement"))


def test_a_hosts_trace_continues_from_the_traceparent_in_meta(
    traced: tuple[InMemorySpanExporter, str], open_session: OpenFn
) -> None:
    exporter, url = traced
    token = open_session("Acme").token
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    meta = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    rpc(url, token, "tools/call", {"name": "account_health", "_meta": meta})
    (call,) = [s for s in exporter.get_finished_spans() if s.name.startswith("tools/call")]
    assert call.context is not None
    assert call.parent is not None
    assert f"{call.context.trace_id:032x}" == trace_id
    assert f"{call.parent.span_id:016x}" == parent_id


def test_exported_spans_lose_exception_messages_and_status_descriptions() -> None:
    exporter = InMemorySpanExporter()
    provider = tracing.build_provider(exporter, batch=False)
    with provider.get_tracer("test").start_as_current_span("db", record_exception=False) as span:
        span.record_exception(ValueError(f'invalid input syntax: "{CANARY}"'))
        span.set_status(Status(StatusCode.ERROR, f"failed on {CANARY}"))
    provider.shutdown()
    (exported,) = exporter.get_finished_spans()
    assert CANARY not in everything_said(exported)
    (event,) = exported.events
    assert dict(event.attributes or {}) == {"exception.type": "ValueError",
                                            "exception.escaped": "False"}
    assert exported.status.status_code is StatusCode.ERROR


def test_traces_are_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TENANTGATE_OTEL", "OTEL_SDK_DISABLED", *tracing.ENDPOINT_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.wanted(Settings())
    assert not tracing.active()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.wanted(Settings())
    monkeypatch.setenv("TENANTGATE_OTEL", "")  # set but empty: as if unset
    assert tracing.wanted(Settings())
    monkeypatch.setenv("TENANTGATE_OTEL", "0")
    assert not tracing.wanted(Settings())
    monkeypatch.setenv("TENANTGATE_OTEL", "1")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert tracing.wanted(Settings())
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.wanted(Settings())


def test_asking_for_traces_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TENANTGATE_OTEL", "1")
    monkeypatch.setattr(tracing, "MODULES", ("opentelemetry.not_installed_here",))
    with pytest.raises(tracing.TracingUnavailable, match=r"tenantgate\[otel\]"):
        tracing.check(Settings())
