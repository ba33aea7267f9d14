"""Traces from a real `tenantgate serve` process, switched on by the standard
OTEL_EXPORTER_OTLP_ENDPOINT alone, exported over OTLP/HTTP to a loopback receiver."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from mcp import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenVerifier
from tests.mediator.conftest import OpenFn
from tests.mediator.test_stdio import params

pytestmark = pytest.mark.anyio
CANARY = "argument-value-canary-0b77"


class Receiver(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self.server.spans.extend(scope.spans)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


async def test_serve_exports_a_call_span_with_its_database_span_to_the_otlp_endpoint(
    settings: Settings, open_session: OpenFn, receiver: Receiver
) -> None:
    s = open_session("Acme")
    secret = TokenVerifier(settings).verify(s.token).session_secret
    server = params(settings, s.token)
    assert server.env is not None
    server.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{receiver.server_port}"
    server.env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    async with Client(server, mode="legacy", cache=None) as client:
        r = await client.call_tool("search_tickets", {"query": CANARY})
        assert not r.is_error
        deadline = time.monotonic() + 20  # the batch processor sends every 100 ms
        while time.monotonic() < deadline:
            with receiver.lock:
                spans = list(receiver.spans)
            if any(x.name == "tools/call search_tickets" for x in spans):
                break
            await anyio.sleep(0.05)
    (call,) = [x for x in spans if x.name == "tools/call search_tickets"]
    inside = [x for x in spans if x.parent_span_id == call.span_id]
    assert len(inside) == 1
    statement = {a.key: a.value.string_value for a in inside[0].attributes}["db.statement"]
    assert statement.startswith("select tenantgate.call_tool(")
    wire = b"".join(x.SerializeToString() for x in spans)
    for text in (s.token, secret, CANARY):
        assert text.encode() not in wire
