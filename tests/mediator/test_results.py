"""Result size: the data travels once, in structuredContent, and the whole result fits the cap."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tenantgate.mediator.results import ok_result
from tenantgate.mediator.settings import Settings
from tests.mediator.conftest import OpenFn
from tests.mediator.test_http import mcp_client

CAP = 4096
pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_result_bytes": CAP})


@pytest.fixture
def many_tickets(database: Any, world: Any) -> None:
    acme = world.northwind.customers["Acme"].customer_id
    with database.connect() as conn:
        for i in range(80):
            conn.execute(
                "insert into demo.tickets (org_id, customer_id, subject) values (%s, %s, %s)",
                (world.northwind.org_id, acme, f"ticket number {i:03d} about a long subject line"),
            )
        # the database caps the data (the tool's max_bytes); the text must fit beside it
        conn.execute(
            "update tenantgate.tool_definitions set max_bytes = %s"
            " where tool_name = 'list_tickets'",
            (CAP - 512,),
        )
        conn.commit()


def wire_call(url: str, token: str, name: str, arguments: dict[str, Any]) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    h = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    return httpx.post(url, json=body, headers=h)


async def test_a_small_result_carries_the_same_json_as_text_and_data(
    http_url: str, open_session: OpenFn
) -> None:
    async with mcp_client(http_url, open_session("Acme").token) as client:
        r = await client.call_tool("list_tickets", {"status": "open"})
    assert json.loads(r.content[0].text) == r.structured_content  # type: ignore[union-attr]


async def test_a_large_result_sends_its_rows_once_and_stays_under_the_byte_cap(
    http_url: str, open_session: OpenFn, many_tickets: None
) -> None:
    token = open_session("Acme").token
    raw = wire_call(http_url, token, "list_tickets", {"limit": 50})
    result = raw.json()["result"]
    assert len(json.dumps(result, separators=(",", ":")).encode()) <= CAP
    assert len(raw.content) <= CAP + 64  # the JSON-RPC envelope around it
    items = result["structuredContent"]["items"]
    assert 5 < len(items) < 50
    assert result["structuredContent"]["truncated"] is True
    text = result["content"][0]["text"]
    assert (
        text == f"{len(items)} rows, more rows exist (truncated); the rows are in structuredContent"
    )
    assert items[0]["subject"] not in text
    async with mcp_client(http_url, token) as client:
        r = await client.call_tool("list_tickets", {"limit": 50})
    assert r.structured_content == result["structuredContent"]


def test_a_record_near_the_cap_drops_trailing_fields_and_names_them() -> None:
    record = {"a": "x" * 100, "b": "y" * 1500, "c": "z" * 1500}
    result = ok_result(record, 2048)
    assert len(json.dumps(result, separators=(",", ":"))) <= 2048
    assert result["structuredContent"]["_omitted"] == ["c"]
    assert result["structuredContent"]["b"] == "y" * 1500
    assert ok_result({"k": 1}, 2048)["content"][0]["text"] == '{"k":1}'


def test_without_a_known_cap_only_small_data_is_repeated_as_text() -> None:
    small = {"items": [{"a": 1}], "truncated": False}
    assert ok_result(small, None)["content"][0]["text"] == '{"items":[{"a":1}],"truncated":false}'
    big = {"items": [{"a": "x" * 100}] * 40, "truncated": False}
    result = ok_result(big, None)
    assert result["content"][0]["text"] == "40 rows; the rows are in structuredContent"
    assert result["structuredContent"] == big
