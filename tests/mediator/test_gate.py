"""The per-turn gate against a real database: what is read, refused, charged and audited."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import psycopg
import pytest

from mediator import errors as E
from mediator.approvals import Approvals
from mediator.db import load_policy
from mediator.demo_data import World
from mediator.gate import Gate
from mediator.history import History
from mediator.tokens import TokenSigner, TokenVerifier
from tests.mediator.conftest import OpenFn, tool_names
from tests.pg import TestDatabase

pytestmark = pytest.mark.anyio


def audit_rows(db: TestDatabase, org_id: str) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "select decision, tool_name, request_id, detail from tenantgate.audit_log"
            " where org_id = %s order by seq",
            (org_id,),
        ).fetchall()


async def test_allowed_read_returns_only_the_sessions_customer(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    out = await gate.call(verifier.verify(open_session("Acme").token), "list_tickets", {})
    subjects = [t["subject"] for t in out["items"]]
    assert len(subjects) == 3
    assert all(x.startswith("Acme:") for x in subjects)


async def test_cross_tenant_arguments_are_rejected_never_used(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    beta = world.northwind.customers["Beta"].customer_id
    for extra in ({"customer_id": beta}, {"org_id": world.globex.org_id}, {"user": "admin"}):
        with pytest.raises(E.InvalidArguments) as err:
            await gate.call(claims, "list_tickets", extra)
        assert next(iter(extra)) in err.value.message
    found = await gate.call(claims, "search_tickets", {"query": "Beta"})
    assert found["items"] == []


async def test_another_customers_ticket_is_not_found(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    acme = verifier.verify(open_session("Acme").token)
    beta_ticket = world.northwind.customers["Beta"].ticket_ids[0]
    args = {"ticket_id": beta_ticket, "status": "closed"}
    with pytest.raises(E.ApprovalRequired) as pending:
        await gate.call(acme, "update_ticket_status", args)
    Approvals(database.admin_dsn).approve(
        world.northwind.org_id, pending.value.approval_id, world.northwind.second_operator_id
    )
    with pytest.raises(E.NotFound):
        await gate.call(acme, "update_ticket_status", args)
    with database.connect() as conn:
        row = conn.execute(
            "select status from demo.tickets where ticket_id = %s", (beta_ticket,)
        ).fetchone()
    assert row == ("open",)


async def test_token_naming_another_customer_than_its_session_is_not_found(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, signer: TokenSigner
) -> None:
    real = verifier.verify(open_session("Acme").token)
    beta = world.northwind.customers["Beta"].customer_id
    forged = signer.mint(
        operator_id=real.operator_id,
        org_id=real.org_id,
        connector_id=real.connector_id,
        customer_id=beta,
        session_id=real.session_id,
        session_secret=real.session_secret,
        scopes=sorted(real.scopes),
        lifetime_seconds=300,
    )
    with pytest.raises(E.NotFound):
        await gate.call(verifier.verify(forged), "list_tickets", {})
    assert await gate.list_tools(verifier.verify(forged)) == []


async def test_paused_customer_is_not_found_on_next_call(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    await gate.call(claims, "get_subscription", {})
    with database.connect("tenantgate_admin") as conn:
        conn.execute(
            "update tenantgate.customer_accounts set status = 'paused'"
            " where org_id = %s and customer_id = %s",
            (world.northwind.org_id, claims.customer_id),
        )
    with pytest.raises(E.NotFound) as err:
        await gate.call(claims, "get_subscription", {})
    assert err.value.message == "not found"


async def test_ended_session_is_not_found_and_its_history_is_gone(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, sessions: Any
) -> None:
    opened = open_session("Acme")
    claims = verifier.verify(opened.token)
    history = History(gate.pool)
    await history.append(claims, "user", "show me acme's tickets")
    assert [m.content for m in await history.read(claims)] == ["show me acme's tickets"]
    assert sessions.end(claims.org_id, claims.session_id)
    with pytest.raises(E.NotFound):
        await gate.call(claims, "list_tickets", {})
    assert await history.read(claims) == []
    assert await history.append(claims, "user", "still there?") is None


async def test_history_is_scoped_to_its_own_session(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    a = verifier.verify(open_session("Acme").token)
    b = verifier.verify(open_session("Acme").token)
    history = History(gate.pool)
    await history.append(a, "user", "only mine")
    assert await history.read(b) == []
    spoofed = dataclasses.replace(b, session_id=a.session_id)
    assert await history.read(spoofed) == []


async def test_unknown_and_unlisted_tools_give_the_same_not_found(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    claims = verifier.verify(open_session("Acme", scopes=["read:tickets"]).token)
    messages = []
    for name in ("drop_all_tables", "issue_refund", "get_customer_profile"):
        with pytest.raises(E.NotFound) as err:
            await gate.call(claims, name, {})
        messages.append(err.value.message)
    assert set(messages) == {"not found"}
    assert tool_names(await gate.list_tools(claims)) == {"list_tickets", "search_tickets"}


async def test_validation_error_says_which_field_and_why(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    with pytest.raises(E.InvalidArguments) as err:
        await gate.call(claims, "list_tickets", {"limit": 5000, "status": "bogus"})
    assert "limit" in err.value.message
    assert "less than or equal to 50" in err.value.message
    assert "status" in err.value.message
    with pytest.raises(E.InvalidArguments):
        await gate.call(claims, "search_tickets", {"query": "x" * 101})


async def test_pii_is_masked_without_the_scope_and_secret_columns_never_leave(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    plain = verifier.verify(open_session("Acme", scopes=["read:profile"]).token)
    pii = verifier.verify(open_session("Acme", scopes=["read:profile", "read:pii"]).token)
    masked = await gate.call(plain, "get_customer_profile", {})
    clear = await gate.call(pii, "get_customer_profile", {})
    assert masked["email"] == "a***@acme.example"
    assert masked["phone"] == "***0100"
    assert set(masked["_masked"]) == {"email", "phone"}
    assert clear["email"] == "admin@acme.example"
    assert "_masked" not in clear
    assert "notes" not in masked
    assert "notes" not in clear


async def test_every_read_has_its_audit_row(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    await gate.call(claims, "account_health", {}, request_key="req-1")
    rows = audit_rows(database, world.northwind.org_id)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("allowed", "account_health", f"{claims.session_id}:req-1")
    ]
    assert set(rows[0][3]) == {"args_sha256"}


async def test_no_data_without_its_audit_row_when_the_connection_dies_before_commit(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)

    async def kill(conn: psycopg.AsyncConnection[Any]) -> None:
        pid = conn.info.backend_pid
        with database.connect(autocommit=True) as su:
            su.execute("select pg_terminate_backend(%s, 5000)", (pid,))
        await asyncio.sleep(0.05)

    gate.fault_before_commit = kill
    with pytest.raises(E.MediatorError) as err:
        await gate.call(claims, "list_invoices", {})
    assert not isinstance(err.value, E.NotFound)
    gate.fault_before_commit = None
    assert [r for r in audit_rows(database, world.northwind.org_id) if r[0] == "allowed"] == []
    with database.connect() as conn:
        ledger = conn.execute(
            "select count(*) from tenantgate.credit_ledger where kind = 'spend'"
        ).fetchone()
    assert ledger == (0,)
    out = await gate.call(claims, "list_invoices", {})  # the pool recovers
    assert len(out["items"]) == 3


async def test_rate_limit_trips_and_recovers(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    gate.settings = gate.settings.model_copy(update={"rate_burst": 3, "rate_per_second": 1.0})
    claims = verifier.verify(open_session("Acme").token)
    for _ in range(3):
        await gate.call(claims, "get_subscription", {})
    with pytest.raises(E.RateLimited):
        await gate.call(claims, "get_subscription", {})
    await gate.call(claims, "list_tickets", {})  # another tool has its own bucket
    await asyncio.sleep(1.1)
    await gate.call(claims, "get_subscription", {})
    decisions = [r[0] for r in audit_rows(database, world.northwind.org_id)]
    assert decisions.count("rate_limited") == 1


async def test_rate_limit_is_shared_across_mediator_processes(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    gate.settings = gate.settings.model_copy(update={"rate_burst": 2, "rate_per_second": 0.01})
    other = Gate(gate.pool, gate.registry, gate.policy, gate.settings)  # stands for a 2nd process
    claims = verifier.verify(open_session("Acme").token)
    await gate.call(claims, "get_subscription", {})
    await other.call(claims, "get_subscription", {})
    with pytest.raises(E.RateLimited):
        await gate.call(claims, "get_subscription", {})


async def test_credits_running_out_is_refused_and_charges_nothing(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    with database.connect() as conn:
        conn.execute(
            "update tenantgate.credit_accounts set balance = 2 where org_id = %s",
            (world.northwind.org_id,),
        )
    claims = verifier.verify(open_session("Acme").token)
    await gate.call(claims, "list_tickets", {})
    await gate.call(claims, "list_tickets", {})
    with pytest.raises(E.NoCredit):
        await gate.call(claims, "list_tickets", {})
    with database.connect() as conn:
        assert conn.execute(
            "select balance from tenantgate.credit_accounts where org_id = %s",
            (world.northwind.org_id,),
        ).fetchone() == (0,)
    assert "no_credit" in [r[0] for r in audit_rows(database, world.northwind.org_id)]


async def test_a_retried_request_is_charged_once(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    for _ in range(3):
        await gate.call(claims, "account_health", {}, request_key="same-key")
    with database.connect() as conn:
        balance = conn.execute(
            "select balance from tenantgate.credit_accounts where org_id = %s",
            (world.northwind.org_id,),
        ).fetchone()
    assert balance == (1000 - 2,)


async def test_side_effect_never_runs_without_approval_and_runs_once_after(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    invoice = world.northwind.customers["Acme"].invoice_ids[0]  # paid, 120.00
    args = {"invoice_id": invoice, "amount_cents": 1000}

    def refunded() -> int:
        with database.connect() as conn:
            row = conn.execute(
                "select refunded_cents from demo.invoices where invoice_id = %s", (invoice,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    with pytest.raises(E.ApprovalRequired) as first:
        await gate.call(claims, "issue_refund", args)
    with pytest.raises(E.ApprovalRequired) as again:
        await gate.call(claims, "issue_refund", args)
    assert again.value.approval_id == first.value.approval_id
    assert refunded() == 0
    approvals = Approvals(database.admin_dsn)
    assert [str(a.approval_id) for a in approvals.pending(world.northwind.org_id)] == [
        first.value.approval_id
    ]
    # approving "refund 10.00" does not approve "refund 100.00"
    approvals.approve(
        world.northwind.org_id, first.value.approval_id, world.northwind.second_operator_id
    )
    with pytest.raises(E.ApprovalRequired):
        await gate.call(claims, "issue_refund", {**args, "amount_cents": 10000})
    out = await gate.call(claims, "issue_refund", args)
    assert out["refunded_cents"] == 1000
    assert refunded() == 1000
    with pytest.raises(E.ApprovalRequired):
        await gate.call(claims, "issue_refund", args)
    assert refunded() == 1000


async def test_denied_approval_never_runs(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    ticket = world.northwind.customers["Acme"].ticket_ids[0]
    args = {"ticket_id": ticket, "status": "closed"}
    with pytest.raises(E.ApprovalRequired) as pending:
        await gate.call(claims, "update_ticket_status", args)
    approvals = Approvals(database.admin_dsn)
    with pytest.raises(E.NotFound):  # an operator of another org cannot decide
        approvals.approve(
            world.northwind.org_id, pending.value.approval_id, world.globex.operator_id
        )
    approvals.deny(
        world.northwind.org_id, pending.value.approval_id, world.northwind.second_operator_id
    )
    with pytest.raises(E.ApprovalRequired):
        await gate.call(claims, "update_ticket_status", args)
    with database.connect() as conn:
        assert conn.execute(
            "select status from demo.tickets where ticket_id = %s", (ticket,)
        ).fetchone() == ("open",)


async def test_elicited_approval_runs_the_call_once(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    ticket = world.northwind.customers["Acme"].ticket_ids[1]
    asked: list[str] = []

    async def yes(approval_id: str, tool: str, arguments: dict[str, Any]) -> bool | None:
        asked.append(tool)
        return True

    async def no(approval_id: str, tool: str, arguments: dict[str, Any]) -> bool | None:
        return False

    out = await gate.call(
        claims, "update_ticket_status", {"ticket_id": ticket, "status": "solved"}, approver=yes
    )
    assert out["status"] == "solved"
    assert asked == ["update_ticket_status"]
    with pytest.raises(E.ApprovalDenied):
        await gate.call(
            claims, "update_ticket_status", {"ticket_id": ticket, "status": "closed"}, approver=no
        )


async def test_audit_chain_verifies_after_mixed_calls(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme", scopes=["read:tickets"]).token)
    await gate.call(claims, "list_tickets", {})
    with pytest.raises(E.NotFound):
        await gate.call(claims, "list_invoices", {})
    with pytest.raises(E.InvalidArguments):
        await gate.call(claims, "list_tickets", {"org_id": world.globex.org_id})
    with database.connect("tenantgate_admin") as conn:
        rows = conn.execute(
            "select * from tenantgate.audit_verify(%s)", (world.northwind.org_id,)
        ).fetchall()
    assert rows
    assert rows[0][1] == 3
    assert rows[0][2] is None


async def test_refusals_never_poison_a_pooled_connection(
    settings: Any, world: World, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    from mediator.db import load_policy, make_pool
    from mediator.tools import default_registry

    one = settings.model_copy(update={"rate_burst": 2, "rate_per_second": 0.5})
    pool = make_pool(one, min_size=1, max_size=1)
    await pool.open(wait=True)
    try:
        gate = Gate(pool, default_registry(), await load_policy(pool), one)
        claims = verifier.verify(open_session("Acme").token)
        outcomes: list[str] = []
        for i in range(40):
            name, args = [
                ("get_subscription", {}),
                ("list_tickets", {"limit": 0}),
                ("nope", {}),
                ("list_invoices", {}),
                ("issue_refund", {"invoice_id": 1, "amount_cents": 1}),
            ][i % 5]
            try:
                await gate.call(claims, name, args)
                outcomes.append("ok")
            except E.MediatorError as exc:
                outcomes.append(type(exc).__name__)
        assert "MediatorError" not in outcomes
        assert "Unavailable" not in outcomes
        assert {"ok", "RateLimited", "InvalidArguments", "NotFound", "ApprovalRequired"} <= set(
            outcomes
        )
    finally:
        await pool.close()


async def test_adding_a_tool_is_a_template_a_model_and_a_catalog_row(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    from typing import Annotated

    from pydantic import Field

    from mediator.tools import Registry, Tool
    from mediator.tools.demo import DEMO_TOOLS, _In

    class GetTicketIn(_In):
        ticket_id: Annotated[int, Field(ge=1, le=2**62)]

    get_ticket = Tool(
        name="get_ticket",
        description="One ticket with its body.",
        input_model=GetTicketIn,
        sql="select ticket_id, subject, body, status from demo.tickets"
        " where org_id = %(org_id)s and customer_id = %(customer_id)s"
        " and ticket_id = %(ticket_id)s::bigint",
        source="demo.tickets",
        many=False,
    )
    gate.registry = Registry([*DEMO_TOOLS, get_ticket])
    claims = verifier.verify(open_session("Acme").token)
    acme_ticket = world.northwind.customers["Acme"].ticket_ids[0]
    with pytest.raises(E.NotFound):  # no catalog row yet
        await gate.call(claims, "get_ticket", {"ticket_id": acme_ticket})
    with database.connect("tenantgate_admin") as conn:
        conn.execute(
            "insert into tenantgate.tools (org_id, connector_id, tool_name, required_scope,"
            " side_effect, credit_cost, description) values (%s, %s, 'get_ticket',"
            " 'read:tickets', false, 1, 'One ticket with its body.')",
            (world.northwind.org_id, world.northwind.connector_id),
        )
    out = await gate.call(claims, "get_ticket", {"ticket_id": acme_ticket})
    assert out["subject"] == "Acme: login fails"
    assert "get_ticket" in tool_names(await gate.list_tools(claims))
    beta_ticket = world.northwind.customers["Beta"].ticket_ids[0]
    with pytest.raises(E.NotFound):
        await gate.call(claims, "get_ticket", {"ticket_id": beta_ticket})


async def test_unstorable_text_is_invalid_arguments_or_not_found(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    for name in ("a\x00b", "\ud800", "LIST_TICKETS"):
        with pytest.raises(E.NotFound):
            await gate.call(claims, name, {})
    with pytest.raises(E.InvalidArguments) as err:
        await gate.call(claims, "search_tickets", {"query": "lo\x00gin"})
    assert "NUL" in err.value.message
    await gate.call(claims, "list_tickets", {}, request_key="bad\x00key")  # key ignored, not used


async def test_an_approved_change_that_touches_nothing_charges_and_uses_up_nothing(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    invoice = world.northwind.customers["Acme"].invoice_ids[0]  # 120.00, paid
    args = {"invoice_id": invoice, "amount_cents": 20000}  # more than the invoice
    with pytest.raises(E.ApprovalRequired) as pending:
        await gate.call(claims, "issue_refund", args)
    Approvals(database.admin_dsn).approve(
        world.northwind.org_id, pending.value.approval_id, world.northwind.second_operator_id
    )
    with pytest.raises(E.NotFound):
        await gate.call(claims, "issue_refund", args)
    with database.connect() as conn:
        assert conn.execute("select status from tenantgate.approvals").fetchone() == ("approved",)
        assert conn.execute(
            "select balance from tenantgate.credit_accounts where org_id = %s",
            (world.northwind.org_id,),
        ).fetchone() == (1000,)
        assert conn.execute(
            "select refunded_cents from demo.invoices where invoice_id = %s", (invoice,)
        ).fetchone() == (0,)
    decisions = [r[0] for r in audit_rows(database, world.northwind.org_id)]
    assert decisions == ["approval_required", "denied"]


async def test_an_http_backed_tool_runs_after_its_audit_row_committed(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    from mediator.tools import Registry, Tool
    from mediator.tools.demo import DEMO_TOOLS, NoArgsIn

    claims = verifier.verify(open_session("Acme").token)
    seen: list[Any] = []

    async def billing_status(rows: list[dict[str, Any]], args: Any) -> list[dict[str, Any]]:
        seen.append(audit_rows(database, world.northwind.org_id))  # committed before the call
        if len(seen) > 1:
            raise TimeoutError("upstream timed out")
        return [{"status": "ok", "customer": str(rows[0]["customer_id"]), "api_key": "k"}]

    tool = Tool(
        name="billing_status",
        description="Upstream billing status.",
        input_model=NoArgsIn,
        sql="select c.customer_id from tenantgate.session_context() c",
        source="upstream.billing",
        many=False,
        runner=billing_status,
    )
    gate.registry = Registry([*DEMO_TOOLS, tool])
    with database.connect("tenantgate_admin", autocommit=True) as conn:
        conn.execute(
            "insert into tenantgate.tools (org_id, connector_id, tool_name, required_scope)"
            " values (%s, %s, 'billing_status', 'read:billing')",
            (world.northwind.org_id, world.northwind.connector_id),
        )
        conn.execute(
            "insert into tenantgate.column_classes (relation, column_name, data_class) values"
            " ('upstream.billing', 'status', 'public'),"
            " ('upstream.billing', 'customer', 'internal')"
        )
    gate.policy = await load_policy(gate.pool)
    out = await gate.call(claims, "billing_status", {})
    assert out == {"status": "ok", "customer": claims.customer_id}  # api_key is unclassified
    assert [r[0] for r in seen[0]] == ["allowed"]
    with pytest.raises(E.UpstreamFailed):
        await gate.call(claims, "billing_status", {})
    assert [r[0] for r in audit_rows(database, world.northwind.org_id)] == [
        "allowed",
        "allowed",
        "error",
    ]


async def test_row_and_byte_limits_truncate_and_say_so(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    gate.settings = gate.settings.model_copy(update={"max_rows": 2})
    out = await gate.call(claims, "list_tickets", {})
    assert len(out["items"]) == 2
    assert out["truncated"] is True
    gate.settings = gate.settings.model_copy(update={"max_rows": 100, "max_bytes": 1024})
    out = await gate.call(claims, "search_tickets", {"query": "acme"})
    assert out["truncated"] is False
    from mediator.shaping import DataPolicy, shape_rows

    rows = [{"subject": "x" * 400} for _ in range(10)]
    shaped = shape_rows(
        rows,
        column_of=lambda f: "demo.tickets." + f,
        policy=DataPolicy({"demo.tickets.subject": "internal"}, {}),
        ceiling=1,
        max_rows=100,
        max_bytes=1024,
    )
    assert 1 <= len(shaped.rows) <= 2
    assert shaped.truncated


async def test_tools_carry_mcp_annotations(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn
) -> None:
    tools = {t["name"]: t for t in await gate.list_tools(verifier.verify(open_session().token))}
    assert len(tools) == 8
    for name in (
        "get_customer_profile",
        "list_tickets",
        "search_tickets",
        "list_invoices",
        "get_subscription",
        "account_health",
    ):
        assert tools[name]["annotations"]["readOnlyHint"] is True
    assert tools["update_ticket_status"]["annotations"] == {
        "readOnlyHint": False,
        "destructiveHint": False,
        "idempotentHint": True,
        "openWorldHint": False,
    }
    assert tools["issue_refund"]["annotations"]["destructiveHint"] is True
    assert tools["issue_refund"]["annotations"]["idempotentHint"] is False
    schema = tools["list_tickets"]["inputSchema"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["limit"]["maximum"] == 50
