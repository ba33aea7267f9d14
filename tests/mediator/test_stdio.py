"""stdio with the SDK's own client: the token comes from the environment, checked every call."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import psycopg
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tenantgate.mediator.demo_data import World
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner, TokenVerifier
from tests.mediator.conftest import OpenFn, serve_env, set_catalog
from tests.pg import TestDatabase

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


def params(settings: Settings, token: str) -> StdioServerParameters:
    env = serve_env(settings, TENANTGATE_TOKEN=token)
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "tenantgate.cli.serve", "--transport", "stdio"],
        env=env,
        cwd=str(REPO),
    )


def token_lasting(settings: Settings, signer: TokenSigner, token: str, seconds: int) -> str:
    """A token for the same session as `token`, valid for `seconds` (negative: long expired)."""
    c = TokenVerifier(settings).verify(token)
    return signer.mint(
        operator_id=c.operator_id,
        org_id=c.org_id,
        connector_id=c.connector_id,
        customer_id=c.customer_id,
        session_id=c.session_id,
        session_secret=c.session_secret,
        scopes=sorted(c.scopes),
        lifetime_seconds=seconds,
    )


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_over_stdio_reads_its_customer_and_sees_a_pause(
    settings: Settings, open_session: OpenFn, world: World, database: TestDatabase, mode: str
) -> None:
    s = open_session("Beta")
    with tempfile.TemporaryFile("w+"):
        async with Client(params(settings, s.token), mode=mode, cache=None) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"list_tickets", "issue_refund"} <= names
            tool = next(t for t in (await client.list_tools()).tools if t.name == "issue_refund")
            assert tool.annotations is not None
            assert tool.annotations.destructive_hint
            r = await client.call_tool("list_tickets", {})
            assert not r.is_error
            assert all(t["subject"].startswith("Beta:") for t in r.structured_content["items"])
            r = await client.call_tool("list_tickets", {"org_id": world.globex.org_id})
            assert r.is_error
            assert "org_id" in r.content[0].text
            with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
                conn.execute(
                    "update tenantgate.customer_accounts set status = 'paused'"
                    " where customer_id = %s",
                    (world.northwind.customers["Beta"].customer_id,),
                )
            r = await client.call_tool("list_tickets", {})
            assert r.is_error
            assert r.content[0].text == "not found"
            r = await client.call_tool("no_such_tool", {})
            assert r.is_error
            assert r.content[0].text == "not found"


async def test_elicitation_over_stdio_approves_a_host_approved_side_effect_once(
    settings: Settings, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    set_catalog(database, world.northwind.org_id, "update_ticket_status", approval="host")
    s = open_session("Acme")
    asked: list[str] = []

    async def approve(context: Any, p: Any) -> types.ElicitResult:
        asked.append(p.message)
        return types.ElicitResult(action="accept", content={"approve": True})

    ticket = world.northwind.customers["Acme"].ticket_ids[0]
    async with Client(
        params(settings, s.token), mode="legacy", cache=None, elicitation_callback=approve
    ) as client:
        r = await client.call_tool(
            "update_ticket_status", {"ticket_id": ticket, "status": "closed"}
        )
    assert not r.is_error, r.content
    assert r.structured_content["status"] == "closed"
    assert len(asked) == 1
    assert "update_ticket_status" in asked[0]
    with psycopg.connect(database.admin_dsn) as conn:
        rows = conn.execute("select status, decided_via from tenantgate.approvals").fetchall()
    assert rows == [("used", "host")]


async def test_stdio_token_is_reverified_on_every_call_and_expires_mid_session(
    settings: Settings, open_session: OpenFn, signer: TokenSigner
) -> None:
    short = token_lasting(settings, signer, open_session("Acme").token, 10)
    p = params(settings, short)
    assert p.env is not None
    p.env["TENANTGATE_LEEWAY_SECONDS"] = "0"
    async with Client(p, mode="legacy", cache=None) as client:
        r = await client.call_tool("get_subscription", {})
        assert not r.is_error
        exp = TokenVerifier(settings).verify(short).expires_at
        await anyio.sleep(max(0.0, exp - time.time() + 0.5))
        r = await client.call_tool("get_subscription", {})
        assert r.is_error
        assert r.content[0].text == "invalid token"


async def test_without_a_back_channel_a_side_effect_waits_for_a_stored_approval(
    settings: Settings, open_session: OpenFn, world: World
) -> None:
    s = open_session("Acme")

    async def approve(context: Any, p: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"approve": True})

    ticket = world.northwind.customers["Acme"].ticket_ids[0]
    async with Client(
        params(settings, s.token), mode="2026-07-28", cache=None, elicitation_callback=approve
    ) as client:
        r = await client.call_tool(
            "update_ticket_status", {"ticket_id": ticket, "status": "closed"}
        )
    assert r.is_error
    assert r.content[0].text.startswith("approval required")  # type: ignore[union-attr]
