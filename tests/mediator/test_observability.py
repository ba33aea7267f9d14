"""Probes, Prometheus metrics and the one JSON log line per request, on a real loopback server."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from psycopg import sql

from tenantgate.mediator.logs import JsonFormatter, TextFormatter, configure
from tests.mediator.conftest import OpenFn
from tests.pg import TestDatabase

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def base(url: str) -> str:
    return url.rsplit("/", 1)[0]


def call(url: str, token: str, name: str, arguments: dict[str, Any] | None = None) -> Any:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments or {}},
    }
    h = {**HEADERS, "Authorization": f"Bearer {token}", "MCP-Protocol-Version": "2025-11-25"}
    return httpx.post(url, json=body, headers=h)


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of the exposition that carry these labels, 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_healthz_and_readyz_answer_without_a_token(http_url: str) -> None:
    assert httpx.get(base(http_url) + "/healthz").json() == {"status": "ok"}
    assert httpx.get(base(http_url) + "/readyz").json() == {"status": "ready"}
    # probes come from addresses the Host allowlist does not name (a kubelet uses the pod IP)
    assert (
        httpx.get(base(http_url) + "/healthz", headers={"Host": "10.0.0.7:8765"}).status_code == 200
    )


def test_readyz_is_503_while_the_database_refuses_connections(
    http_url: str, database: TestDatabase
) -> None:
    name = sql.Identifier(database.name)
    with psycopg.connect(database.server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} allow_connections false").format(name))
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = %s and pid <> pg_backend_pid()",
            (database.name,),
        )
    try:
        r = httpx.get(base(http_url) + "/readyz", timeout=30)
        assert r.status_code == 503
        assert httpx.get(base(http_url) + "/healthz").status_code == 200
    finally:
        with psycopg.connect(database.server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("alter database {} allow_connections true").format(name))
    assert httpx.get(base(http_url) + "/readyz", timeout=30).status_code == 200


def test_metrics_show_a_calls_decision_by_tool(
    http_url: str, open_session: OpenFn, world: Any
) -> None:
    token = open_session("Acme").token
    before = httpx.get(base(http_url) + "/metrics").text
    assert call(http_url, token, "account_health").json()["result"]["isError"] is False
    assert call(http_url, token, "list_tickets", {"status": "bogus"}).json()["result"]["isError"]
    invoice = world.northwind.customers["Acme"].invoice_ids[0]
    refund = call(http_url, token, "issue_refund", {"invoice_id": invoice, "amount_cents": 100})
    assert refund.status_code == 200
    httpx.post(http_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=HEADERS)
    after = httpx.get(base(http_url) + "/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def grew(name: str, **labels: str) -> float:
        return metric(text, name, **labels) - metric(before, name, **labels)

    assert grew("tenantgate_tool_calls_total", tool="account_health", decision="allowed") == 1
    assert grew("tenantgate_tool_calls_total", decision="invalid_arguments") == 1
    assert grew("tenantgate_tool_calls_total", decision="token_invalid") == 1
    assert grew("tenantgate_tool_calls_total", decision="approval_required") == 1
    assert grew("tenantgate_tool_call_seconds_count", tool="account_health") == 1
    assert grew("tenantgate_http_requests_total", method="tools/call", status="200") == 3
    assert metric(text, "tenantgate_db_pool_pool_max") >= 1
    assert "tenantgate_upstream_calls" in text


def test_metrics_labels_stay_bounded_whatever_names_a_client_invents(
    http_url: str, open_session: OpenFn
) -> None:
    token = open_session("Acme").token
    for i in range(5):
        call(http_url, token, f"made_up_tool_{i}")
    text = httpx.get(base(http_url) + "/metrics").text
    assert "made_up_tool" not in text
    assert metric(text, "tenantgate_tool_calls_total", tool="other", decision="denied") >= 5


def test_metrics_follow_the_host_allowlist(http_url: str) -> None:
    r = httpx.get(base(http_url) + "/metrics", headers={"Host": "evil.example"})
    assert r.status_code == 421


def test_one_log_line_per_request_with_no_token_secret_or_argument(
    http_url: str, open_session: OpenFn, caplog: pytest.LogCaptureFixture, world: Any
) -> None:
    caplog.set_level("INFO", logger="tenantgate.access")
    s = open_session("Acme")
    r = call(http_url, s.token, "search_tickets", {"query": "argument-value-canary"})
    assert r.status_code == 200
    deadline = time.monotonic() + 5  # the line is written once the answer has left
    while True:
        lines = [rec for rec in caplog.records if rec.name == "tenantgate.access"]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    time.sleep(0.1)
    lines = [rec for rec in caplog.records if rec.name == "tenantgate.access"]
    assert len(lines) == 1
    doc = json.loads(JsonFormatter().format(lines[0]))
    fields = doc["request"]
    assert fields["request_id"] == r.headers["x-request-id"]
    assert fields["org"] == str(world.northwind.org_id)
    assert fields["tool"] == "search_tickets"
    assert fields["decision"] == "allowed"
    assert fields["status"] == 200
    assert fields["method"] == "tools/call"
    assert fields["duration_ms"] > 0
    everything = json.dumps(doc) + caplog.text
    assert "argument-value-canary" not in everything
    assert s.token not in everything
    assert s.token.split(".")[1] not in everything
    secret = jwt.decode(s.token, options={"verify_signature": False})["tg_secret"]
    assert secret not in everything


def test_log_level_and_format_settings_apply() -> None:
    stream = io.StringIO()
    try:
        configure("WARNING", "json", stream)
        logging.getLogger("tenantgate.x").info("hidden")
        logging.getLogger("tenantgate.x").warning("shown %s", 1)
        lines = stream.getvalue().splitlines()
        assert len(lines) == 1
        assert json.loads(lines[0])["msg"] == "shown 1"
        configure("INFO", "text", stream)
        logging.getLogger("tenantgate.access").info("request", extra={"request": {"status": 200}})
        assert stream.getvalue().splitlines()[-1].endswith("request status=200")
    finally:
        logging.getLogger().handlers.clear()
    assert isinstance(TextFormatter(), logging.Formatter)


def test_upstream_calls_are_counted_by_outcome() -> None:
    import asyncio

    from tenantgate.mediator.fake_upstream import FakeBilling
    from tenantgate.mediator.keys import Secret
    from tenantgate.mediator.observe import exposition
    from tenantgate.mediator.upstream import (
        ConnectorTarget,
        EgressDeniedError,
        EgressPolicy,
        call_upstream,
    )

    key = Secret("sk_test_metrics_0123456789abcdef")

    def outcome_count(outcome: str) -> float:
        return metric(exposition()[0].decode(), "tenantgate_upstream_calls_total", outcome=outcome)

    ok, denied = outcome_count("ok"), outcome_count("denied")
    with FakeBilling({key.reveal(): {"customer": "Acme"}}) as fake:
        target = ConnectorTarget(fake.base_url)
        allow = EgressPolicy.parse(f"http://127.0.0.1:{fake.port}")
        asyncio.run(call_upstream(target, key, "/v1/billing/status", egress=allow))
        with pytest.raises(EgressDeniedError):
            asyncio.run(call_upstream(target, key, "/v1/x", egress=EgressPolicy.parse("")))
    assert outcome_count("ok") == ok + 1
    assert outcome_count("denied") == denied + 1
