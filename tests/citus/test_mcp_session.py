"""A demo-style session on the cluster: the MCP SDK's streamable-HTTP client, the mediator, Citus.

What `tenantgate demo` plays on one PostgreSQL, played against the coordinator: tools/list, reads,
a refusal, an operator approval used once; then the database's exact record of it, and the
Citus counters showing the session touched the org's worker only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tenantgate.mediator.approvals import Approvals, OwnRequest
from tenantgate.mediator.demo_data import World
from tests.citus.cluster import DATABASE, Cluster, counters
from tests.mediator.conftest import OpenFn
from tests.pg import TestDatabase

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def mcp_client(url: str, token: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    async with http, Client(streamable_http_client(url, http_client=http), mode="legacy",
                            cache=None) as client:
        yield client


def text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_an_mcp_session_lists_reads_is_refused_and_runs_an_approved_call_once_on_the_cluster(
        cluster: Cluster, database: TestDatabase, world: World, open_session: OpenFn,
        http_url: str) -> None:
    org = world.northwind
    acme, beta = org.customers["Acme"], org.customers["Beta"]
    session = open_session("Acme")
    refund = {"invoice_id": acme.invoice_ids[0], "amount_cents": 2500}
    approvals = Approvals(database.admin_dsn)
    with psycopg.connect(cluster.coordinator.dsn(DATABASE)) as su:
        home = cluster.node_of(su, org.org_id)
    before = counters(cluster)
    async with mcp_client(http_url, session.token) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        read = await client.call_tool("list_tickets", {"status": "open"})
        refused = await client.call_tool("list_tickets", {"customer_id": beta.customer_id})
        asked = await client.call_tool("issue_refund", refund)
        approval_id = text(asked).split("approval ")[-1].split(" ")[0]
        with pytest.raises(OwnRequest):  # four eyes: not the operator whose session asked
            approvals.approve(org.org_id, approval_id, org.operator_id)
        still_pending = await client.call_tool("issue_refund", refund)
        approvals.approve(org.org_id, approval_id, org.second_operator_id)
        ran = await client.call_tool("issue_refund", refund)
        once = await client.call_tool("issue_refund", refund)
    after = counters(cluster)

    assert {"list_tickets", "issue_refund", "account_health"} <= names
    assert not read.is_error
    assert [t["subject"] for t in read.structured_content["items"]] == ["Acme: login fails"]
    assert refused.is_error
    assert "Beta" not in text(refused)
    assert asked.is_error
    assert f"approval {approval_id} is pending" in text(asked)
    assert still_pending.is_error
    assert approval_id in text(still_pending)
    assert not ran.is_error, text(ran)
    assert once.is_error
    assert "approval" in text(once)
    assert approval_id not in text(once)  # a new request: the approved one was used
    with psycopg.connect(database.superuser_dsn) as su:
        assert su.execute("select balance from tenantgate.credit_accounts where org_id = %s",
                          (org.org_id,)).fetchone() == (1000 - 1 - 5,)
        assert su.execute("select status, count(*) from tenantgate.approvals where org_id = %s"
                          " group by 1 order by 1", (org.org_id,)).fetchall() == [
            ("pending", 1), ("used", 1)]
        decisions = [r[0] for r in su.execute(
            "select decision from tenantgate.audit_log where org_id = %s and tool_name is not"
            " null order by seq", (org.org_id,)).fetchall()]
    assert decisions.count("allowed") == 2  # the read and the approved refund
    assert decisions.count("approval_required") == 3
    with psycopg.connect(database.admin_dsn, autocommit=True) as admin:
        assert admin.execute("select first_broken_seq, problem from tenantgate.audit_verify(%s)",
                             (org.org_id,)).fetchall() == [(None, None)]
    delta = {port: tuple(a - b for a, b in zip(after[port], before[port], strict=True))
             for port in after}
    assert all(change[2] == 0 for change in delta.values())  # no statement fanned out
    others = [w.port for w in cluster.workers if w.port != home]
    for port in others:  # Globex and the other orgs' worker: untouched by this session
        assert delta[port][1:] == (0, 0)
    print(f"\nMCP session on the cluster: {delta[cluster.coordinator.port][1]} single-shard "
          f"statements delegated by the coordinator, 0 multi-shard, other worker untouched")
