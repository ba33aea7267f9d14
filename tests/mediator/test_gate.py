"""The per-turn gate against a real database: what is read, refused, charged and audited."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from tenantgate.mediator import errors as E
from tenantgate.mediator.approvals import Approvals, OwnRequest
from tenantgate.mediator.demo_data import World
from tenantgate.mediator.gate import Gate
from tenantgate.mediator.history import History
from tenantgate.mediator.tokens import TokenSigner, TokenVerifier
from tests.mediator.conftest import OpenFn, apply_extra_tools, set_catalog, tool_names
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


async def test_another_customers_ticket_is_not_found_and_opens_no_approval(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    nw = world.northwind
    with database.connect() as conn:  # Beta gets a 4th ticket: no Acme ticket has that id
        row = conn.execute(
            "insert into demo.tickets (org_id, customer_id, subject) values (%s, %s, 'only beta')"
            " returning ticket_id",
            (nw.org_id, nw.customers["Beta"].customer_id),
        ).fetchone()
    assert row is not None
    acme = verifier.verify(open_session("Acme").token)
    with pytest.raises(E.NotFound):
        await gate.call(acme, "update_ticket_status", {"ticket_id": row[0], "status": "closed"})
    with database.connect() as conn:
        assert conn.execute("select count(*) from tenantgate.approvals").fetchone() == (0,)
        assert conn.execute(
            "select status from demo.tickets where org_id = %s and customer_id = %s"
            " and ticket_id = %s",
            (nw.org_id, nw.customers["Beta"].customer_id, row[0]),
        ).fetchone() == ("open",)
    assert [r[3].get("reason") for r in audit_rows(database, nw.org_id)] == ["no_target"]


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
    assert "limit: must be between 1 and 50" in err.value.message
    assert "status: must be one of" in err.value.message
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


async def test_every_read_has_its_audit_row_written_after_it_with_counts(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    out = await gate.call(claims, "list_tickets", {}, request_key="req-1")
    rows = audit_rows(database, world.northwind.org_id)
    assert [(r[0], r[1], r[2]) for r in rows] == [("allowed", "list_tickets", "req-1")]
    detail = rows[0][3]
    assert set(detail) == {"args_sha256", "rows", "bytes", "truncated"}
    assert detail["rows"] == len(out["items"]) == 3
    assert detail["bytes"] > 100
    assert detail["truncated"] is False


async def test_no_data_and_no_charge_when_the_connection_dies_mid_call(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    apply_extra_tools(
        database,
        """
tools:
  slow_tickets:
    description: Tickets, slowly.
    statement: |
      select ticket_id, subject from demo.tickets
      where org_id = :org_id and customer_id = :customer_id and pg_catalog.pg_sleep(0.3) is not null
    catalog: {scope: read:tickets}
""",
    )
    with database.connect("tenantgate_admin", autocommit=True) as conn:
        conn.execute(
            "insert into tenantgate.tools (org_id, connector_id, tool_name, required_scope)"
            " values (%s, %s, 'slow_tickets', 'read:tickets')",
            (world.northwind.org_id, world.northwind.connector_id),
        )
    claims = verifier.verify(open_session("Acme").token)

    async def kill() -> None:
        await asyncio.sleep(0.4)
        with database.connect(autocommit=True) as su:
            su.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where usename = 'tenantgate_mediator' and query like '%%call_tool%%'"
                " and state = 'active'"
            )

    with pytest.raises(E.MediatorError) as err:
        await asyncio.gather(gate.call(claims, "slow_tickets", {}), kill())
    assert not isinstance(err.value, E.NotFound)
    assert audit_rows(database, world.northwind.org_id) == []
    with database.connect() as conn:
        ledger = conn.execute(
            "select count(*) from tenantgate.credit_ledger where kind = 'spend'"
        ).fetchone()
    assert ledger == (0,)
    out = await gate.call(claims, "list_invoices", {})  # the pool recovers
    assert len(out["items"]) == 3


async def test_rate_limit_comes_from_the_catalog_trips_and_recovers(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    set_catalog(
        database, world.northwind.org_id, "get_subscription", rate_burst=3, rate_per_second=1.0
    )
    claims = verifier.verify(open_session("Acme").token)
    for _ in range(3):
        await gate.call(claims, "get_subscription", {})
    for _ in range(5):
        with pytest.raises(E.RateLimited):
            await gate.call(claims, "get_subscription", {})
    await gate.call(claims, "list_tickets", {})  # another tool has its own bucket
    await asyncio.sleep(1.1)
    await gate.call(claims, "get_subscription", {})
    rows = audit_rows(database, world.northwind.org_id)
    # refusals while the bucket is empty are counted into the next row, not written one by one
    assert [r[0] for r in rows] == ["allowed"] * 5
    assert rows[-1][3]["rate_limited_before"] == 5


async def test_rate_limit_is_shared_across_mediator_processes(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    set_catalog(
        database, world.northwind.org_id, "get_subscription", rate_burst=2, rate_per_second=0.01
    )
    other = Gate(gate.pool, gate.settings)  # stands for a 2nd process
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


async def test_a_read_repeated_with_the_same_request_key_is_charged_every_time(
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
    assert balance == (1000 - 3 * 2,)  # no data without its charge


async def test_a_request_key_reused_for_other_arguments_or_another_tool_runs_nothing(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    await gate.call(claims, "list_tickets", {"limit": 1}, request_key="k1")
    with pytest.raises(E.RequestKeyReused):
        await gate.call(claims, "list_tickets", {"limit": 2}, request_key="k1")
    with pytest.raises(E.RequestKeyReused):
        await gate.call(claims, "list_invoices", {"limit": 1}, request_key="k1")
    with database.connect() as conn:
        assert conn.execute(
            "select balance from tenantgate.credit_accounts where org_id = %s",
            (world.northwind.org_id,),
        ).fetchone() == (999,)
    reasons = [r[3].get("reason") for r in audit_rows(database, world.northwind.org_id)]
    assert reasons == [None, "request_key_reused", "request_key_reused"]


async def test_a_side_effect_retried_with_its_key_answers_its_first_outcome_and_runs_once(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    nw = world.northwind
    claims = verifier.verify(open_session("Acme").token)
    invoice = nw.customers["Acme"].invoice_ids[0]  # paid, 120.00
    args = {"invoice_id": invoice, "amount_cents": 1000}
    with pytest.raises(E.ApprovalRequired) as pending:
        await gate.call(claims, "issue_refund", args, request_key="refund-1")
    Approvals(database.admin_dsn).approve(
        nw.org_id, pending.value.approval_id, nw.second_operator_id
    )
    first = await gate.call(claims, "issue_refund", args, request_key="refund-1")
    again = await gate.call(claims, "issue_refund", args, request_key="refund-1")
    assert first["refunded_cents"] == 1000
    assert again == {**first, "replayed": True} or again["refunded_cents"] == 1000
    with database.connect() as conn:
        assert conn.execute(
            "select refunded_cents from demo.invoices where org_id = %s and customer_id = %s"
            " and invoice_id = %s",
            (nw.org_id, nw.customers["Acme"].customer_id, invoice),
        ).fetchone() == (1000,)
        assert conn.execute(
            "select balance from tenantgate.credit_accounts where org_id = %s", (nw.org_id,)
        ).fetchone() == (1000 - 5,)


async def test_side_effect_never_runs_without_approval_and_runs_once_after(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    invoice = world.northwind.customers["Acme"].invoice_ids[0]  # paid, 120.00
    args = {"invoice_id": invoice, "amount_cents": 1000}

    def refunded() -> int:
        with database.connect() as conn:
            row = conn.execute(
                "select refunded_cents from demo.invoices where org_id = %s and customer_id = %s"
                " and invoice_id = %s",
                (world.northwind.org_id, claims.customer_id, invoice),
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


async def test_denied_approval_never_runs_and_reaches_the_agent_as_denied(
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
    for _ in range(2):
        with pytest.raises(E.ApprovalDenied):
            await gate.call(claims, "update_ticket_status", args)
    with database.connect() as conn:
        assert conn.execute(
            "select status from demo.tickets where org_id = %s and customer_id = %s"
            " and ticket_id = %s",
            (world.northwind.org_id, claims.customer_id, ticket),
        ).fetchone() == ("open",)
        assert conn.execute("select count(*) from tenantgate.approvals").fetchone() == (1,)


async def test_the_requester_cannot_approve_their_own_request(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    ticket = world.northwind.customers["Acme"].ticket_ids[0]
    with pytest.raises(E.ApprovalRequired) as pending:
        await gate.call(claims, "update_ticket_status", {"ticket_id": ticket, "status": "closed"})
    with pytest.raises(OwnRequest, match="their own request"):
        Approvals(database.admin_dsn).approve(
            world.northwind.org_id, pending.value.approval_id, world.northwind.operator_id
        )


async def test_elicited_approval_runs_the_call_once_only_for_host_approved_tools(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    ticket = world.northwind.customers["Acme"].ticket_ids[1]
    asked: list[str] = []

    async def yes(approval_id: str, tool: str, arguments: dict[str, Any]) -> bool | None:
        asked.append(tool)
        return True

    async def no(approval_id: str, tool: str, arguments: dict[str, Any]) -> bool | None:
        return False

    with pytest.raises(E.ApprovalRequired):  # approval: operator -- the host is never asked
        await gate.call(
            claims, "update_ticket_status", {"ticket_id": ticket, "status": "solved"}, approver=yes
        )
    assert asked == []
    set_catalog(database, world.northwind.org_id, "update_ticket_status", approval="host")
    out = await gate.call(
        claims, "update_ticket_status", {"ticket_id": ticket, "status": "pending"}, approver=yes
    )
    assert out["status"] == "pending"
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
    settings: Any,
    world: World,
    verifier: TokenVerifier,
    open_session: OpenFn,
    database: TestDatabase,
) -> None:
    from tenantgate.mediator.db import make_pool

    set_catalog(
        database, world.northwind.org_id, "get_subscription", rate_burst=2, rate_per_second=0.5
    )
    pool = make_pool(settings, min_size=1, max_size=1)
    await pool.open(wait=True)
    try:
        gate = Gate(pool, settings)
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


async def test_adding_a_tool_is_a_tools_file_entry_and_a_catalog_row(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    apply_extra_tools(
        database,
        """
tools:
  get_ticket:
    description: One ticket of the current customer, with its body.
    parameters:
      - {name: ticket_id, type: integer, minimum: 1, maximum: 4611686018427387904,
         description: The ticket.}
    statement: |
      select ticket_id, subject, body, status from demo.tickets
      where org_id = :org_id and customer_id = :customer_id and ticket_id = :ticket_id
    returns: one
    catalog: {scope: read:tickets}
""",
    )
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
    with pytest.raises(E.NotFound):  # Beta's 3 tickets are 1..3 too: 99 exists for nobody
        await gate.call(claims, "get_ticket", {"ticket_id": 99})


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
            "select refunded_cents from demo.invoices where org_id = %s and customer_id = %s"
            " and invoice_id = %s",
            (world.northwind.org_id, claims.customer_id, invoice),
        ).fetchone() == (0,)
    decisions = [r[0] for r in audit_rows(database, world.northwind.org_id)]
    assert decisions == ["approval_required", "approved", "denied"]


async def test_row_and_byte_limits_from_the_definition_truncate_a_field_and_say_so(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    with database.connect() as conn:
        conn.execute(
            "update tenantgate.tool_definitions set max_rows = 2 where tool_name = 'list_tickets'"
        )
    out = await gate.call(claims, "list_tickets", {})
    assert len(out["items"]) == 2
    assert out["truncated"] is True
    with database.connect() as conn:
        conn.execute(
            "update tenantgate.tool_definitions set max_bytes = 1024"
            " where tool_name = 'search_tickets'"
        )
        conn.execute(
            "update demo.tickets set subject = 'Acme: ' || repeat('x', 3000)"
            " where org_id = %s and customer_id = %s and ticket_id = 3",
            (world.northwind.org_id, claims.customer_id),
        )
    out = await gate.call(claims, "search_tickets", {"query": "acme"})
    assert out["truncated"] is True
    assert len(out["items"]) == 1  # the row stays, its long field is cut and marked
    assert out["items"][0]["subject"].endswith("[truncated by tenantgate]")
    assert len(out["items"][0]["subject"]) < 1024


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
        "title": "Update ticket status",
        "readOnlyHint": False,
        "destructiveHint": False,
        "idempotentHint": True,
        "openWorldHint": False,
    }
    assert tools["update_ticket_status"]["title"] == "Update ticket status"
    assert tools["issue_refund"]["annotations"]["destructiveHint"] is True
    assert tools["issue_refund"]["annotations"]["idempotentHint"] is False
    schema = tools["list_tickets"]["inputSchema"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["limit"]["maximum"] == 50


async def test_approval_history_survives_sessions_purge(
    gate: Gate,
    verifier: TokenVerifier,
    open_session: OpenFn,
    world: World,
    database: TestDatabase,
    sessions: Any,
) -> None:
    claims = verifier.verify(open_session("Acme").token)
    ticket = world.northwind.customers["Acme"].ticket_ids[0]
    with pytest.raises(E.ApprovalRequired):
        await gate.call(claims, "update_ticket_status", {"ticket_id": ticket, "status": "closed"})
    assert sessions.end(claims.org_id, claims.session_id)
    sessions.purge()
    with database.connect() as conn:
        assert conn.execute("select count(*) from tenantgate.sessions").fetchone() == (0,)
        assert conn.execute(
            "select tool_name, status, preview ->> 'subject' from tenantgate.approvals"
        ).fetchall() == [("update_ticket_status", "pending", "Acme: login fails")]


async def test_an_expired_approval_is_never_used_and_a_new_one_is_asked(
    gate: Gate, verifier: TokenVerifier, open_session: OpenFn, world: World, database: TestDatabase
) -> None:
    nw = world.northwind
    claims = verifier.verify(open_session("Acme").token)
    args = {"ticket_id": nw.customers["Acme"].ticket_ids[0], "status": "closed"}
    with pytest.raises(E.ApprovalRequired) as first:
        await gate.call(claims, "update_ticket_status", args)
    Approvals(database.admin_dsn).approve(nw.org_id, first.value.approval_id, nw.second_operator_id)
    with database.connect() as conn:
        conn.execute("update tenantgate.approvals set expires_at = now() - interval '1 second'")
    with pytest.raises(E.ApprovalRequired) as second:
        await gate.call(claims, "update_ticket_status", args)
    assert second.value.approval_id != first.value.approval_id
    with database.connect() as conn:
        assert conn.execute(
            "select status from demo.tickets where org_id = %s and customer_id = %s"
            " and ticket_id = %s",
            (nw.org_id, claims.customer_id, args["ticket_id"]),
        ).fetchone() == ("open",)
