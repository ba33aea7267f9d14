"""No token, secret, SQL text or stack trace reaches the host or a log line."""

from __future__ import annotations

import logging

import httpx
import pytest

from tenantgate.mediator.demo_data import World
from tests.mediator.conftest import OpenFn
from tests.mediator.test_http import mcp_client
from tests.pg import TestDatabase

pytestmark = pytest.mark.anyio
SERVER_LOGGERS = ("tenantgate", "uvicorn", "psycopg", "mcp.server", "mediator")


async def test_no_secret_or_token_in_any_log_line(
    http_url: str,
    open_session: OpenFn,
    world: World,
    database: TestDatabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    s = open_session("Acme", scopes=["read:tickets", "write:refunds"])
    import jwt

    secret = jwt.decode(s.token, options={"verify_signature": False})["tg_secret"]
    async with mcp_client(http_url, s.token) as client:
        await client.list_tools()
        await client.call_tool("list_tickets", {})
        await client.call_tool("list_tickets", {"org_id": world.globex.org_id})
        await client.call_tool("get_customer_profile", {})
        await client.call_tool("issue_refund", {"invoice_id": 1, "amount_cents": 5})
    with database.connect(autocommit=True) as conn:  # break a template: an internal error
        conn.execute("alter table demo.tickets rename column subject to title")
    async with mcp_client(http_url, s.token) as client:
        broken = await client.call_tool("list_tickets", {})
    httpx.post(
        http_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {s.token}x"},
    )
    text = broken.content[0].text  # type: ignore[union-attr]
    assert broken.is_error
    assert text == "internal error"
    server_lines = [
        r.getMessage() + (r.exc_text or "")
        for r in caplog.records
        if r.name.startswith(SERVER_LOGGERS)
    ]
    assert server_lines, "expected the mediator to log something"
    blob = "\n".join(server_lines)
    for needle in (s.token, secret, s.token.split(".")[2]):
        assert needle not in blob
    assert "tool call failed" in blob


async def test_database_error_reaches_the_host_without_sql_or_trace(
    http_url: str, open_session: OpenFn, database: TestDatabase
) -> None:
    with database.connect(autocommit=True) as conn:
        conn.execute("alter table demo.subscriptions rename column plan to plan_name")
    s = open_session("Acme")
    async with mcp_client(http_url, s.token) as client:
        r = await client.call_tool("get_subscription", {})
    text = r.content[0].text  # type: ignore[union-attr]
    assert r.is_error
    assert text == "internal error"
    assert "select" not in text.lower()
    assert "Traceback" not in text


def test_a_database_failure_on_tools_list_is_an_error_not_an_empty_catalog(
    http_url: str, open_session: OpenFn, database: TestDatabase
) -> None:
    s = open_session("Acme")
    with database.connect(autocommit=True) as conn:
        conn.execute(
            "revoke execute on function tenantgate.list_tools(uuid, uuid, text)"
            " from tenantgate_mediator"
        )
    r = httpx.post(
        http_url,
        json={"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
        headers={"Authorization": f"Bearer {s.token}"},
    )
    assert r.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32603, "message": "internal error"},
    }
