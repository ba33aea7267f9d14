"""A compromised mediator: its database credential, one live session secret, and arbitrary SQL.

Whatever it sends, it must get nothing beyond what one admitted, charged, audited call of that
session gives: no tenant row read or written directly, no charge below the catalog's cost, no
`allowed` audit row of its own making, no approval decided, no other session's secret, history
or key, no way to stall another org.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tenantgate.mediator.demo_data import World
from tenantgate.mediator.tokens import Claims, TokenVerifier
from tests.mediator.conftest import OpenFn
from tests.pg import TestDatabase

ENROLLED = ("demo.customer_profiles", "demo.tickets", "demo.invoices", "demo.subscriptions")
CALL = "select tenantgate.call_tool(%s, %s, %s, %s, %s, %s)"
# Everything the mediator role may execute in schema tenantgate: two entry points, the host
# approval answer, and the read-only context functions policies and the history use.
MEDIATOR_FUNCTIONS = {
    "call_tool",
    "list_tools",
    "approval_answer",
    "upstream_outcome",
    "session_context",
    "setting_uuid",
    "current_tenant",
    "current_org",
    "current_customer",
    "current_session",
    "current_operator",
    "current_connector",
}


@pytest.fixture
def acme(open_session: OpenFn, verifier: TokenVerifier) -> Claims:
    """A live session of Acme, as the claims (with its secret) a mediator process holds."""
    return verifier.verify(open_session("Acme").token)


@pytest.fixture
def mediator(database: TestDatabase) -> Iterator[psycopg.Connection[Any]]:
    with database.connect("tenantgate_mediator", autocommit=True) as conn:
        yield conn


def ctx(conn: psycopg.Connection[Any], world: World, s: Claims) -> None:
    """Set the three settings exactly as the gate does, transaction-locally."""
    org = world.northwind
    conn.execute(
        "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true),"
        " set_config('app.session_secret', %s, true)",
        (org.org_id, org.customers["Acme"].customer_id, s.session_secret),
    )


def call(
    conn: psycopg.Connection[Any],
    world: World,
    s: Claims,
    tool: str,
    args: Any,
    key: str | None = None,
    customer: str = "Acme",
) -> dict[str, Any]:
    org = world.northwind
    row = conn.execute(
        CALL,
        (org.org_id, org.customers[customer].customer_id, s.session_secret, key, tool, Jsonb(args)),
    ).fetchone()
    assert row is not None
    return dict(row[0])


def audit(database: TestDatabase, org_id: str) -> list[tuple[Any, ...]]:
    with database.connect() as conn:
        return conn.execute(
            "select decision, tool_name, detail from tenantgate.audit_log where org_id = %s"
            " order by seq",
            (org_id,),
        ).fetchall()


def balance(database: TestDatabase, org_id: str) -> int:
    with database.connect() as conn:
        row = conn.execute(
            "select balance from tenantgate.credit_accounts where org_id = %s", (org_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("table", ENROLLED)
@pytest.mark.parametrize(
    "statement",
    [
        "select * from {t}",
        "select count(*) from {t}",
        "update {t} set org_id = org_id",
        "delete from {t}",
        "insert into {t} select * from {t} limit 0",
        "lock table {t} in access share mode",
    ],
)
def test_no_enrolled_table_is_readable_or_writable_directly_even_with_a_live_secret(
    mediator: psycopg.Connection[Any], world: World, acme: Claims, table: str, statement: str
) -> None:
    with mediator.transaction():
        ctx(mediator, world, acme)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            mediator.execute(statement.format(t=table))


def test_the_mediator_may_execute_exactly_the_entry_points_and_context_functions(
    mediator: psycopg.Connection[Any],
) -> None:
    rows = mediator.execute(
        "select p.proname from pg_catalog.pg_proc p"
        " join pg_catalog.pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('tenantgate', 'tenantgate_tools', 'demo')"
        " and has_function_privilege(current_user, p.oid, 'execute')"
    ).fetchall()
    assert {r[0] for r in rows} == MEDIATOR_FUNCTIONS


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("select * from tenantgate.spend_credits(%s, %s, %s)", ("r1", 1, "issue_refund")),
        (
            "select * from tenantgate.spend_credits_for(%s, %s, %s, %s, %s)",
            (str(uuid.uuid4()), str(uuid.uuid4()), "r", 1, "x"),
        ),
        (
            "select * from tenantgate.append_audit(%s, %s, %s, %s)",
            ("r2", "drop_everything", "allowed", "{}"),
        ),
        (
            "select * from tenantgate.audit_append_row(%s, %s, %s, %s, %s, %s, %s, %s)",
            (str(uuid.uuid4()), None, None, None, "r", "t", "allowed", "{}"),
        ),
        (
            "select tenantgate.audit_denial(%s, %s, %s, %s, %s)",
            (str(uuid.uuid4()), "r", "t", "x", "{}"),
        ),
        (
            "select * from tenantgate.trust_check(%s, %s, %s, %s)",
            (str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), "s"),
        ),
        (
            "select tenantgate.approval_decide(%s, %s, %s, %s)",
            (str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), True),
        ),
        (
            "select tenantgate.rate_try(%s, %s, %s, %s, %s)",
            (str(uuid.uuid4()), str(uuid.uuid4()), "t", 1000, 1000.0),
        ),
        ("select tenantgate.grant_credits(%s, %s, %s)", (str(uuid.uuid4()), 5, "r")),
        ("select tenantgate.credit_take(%s, %s, %s)", (str(uuid.uuid4()), 1, 0)),
        ("select tenantgate.credit_spread(%s, %s, %s)", (str(uuid.uuid4()), 5, None)),
        ("select tenantgate.record_denial(%s, %s)", (str(uuid.uuid4()), "t")),
        (
            "select * from tenantgate_tools.list_tickets(%s, %s, %s)",
            (str(uuid.uuid4()), str(uuid.uuid4()), "{}"),
        ),
    ],
)
def test_no_function_that_takes_a_cost_a_decision_or_an_approval_is_executable(
    mediator: psycopg.Connection[Any], world: World, acme: Claims, query: str, params: Any
) -> None:
    with mediator.transaction():
        ctx(mediator, world, acme)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            mediator.execute(query, params)


@pytest.mark.parametrize(
    "statement",
    [
        "select * from tenantgate.sessions",
        "select secret_hash from tenantgate.sessions",
        "select * from tenantgate.customer_secrets",
        "select * from tenantgate.audit_log",
        "select * from tenantgate.audit_heads for update",
        "select * from tenantgate.credit_accounts for update",
        "update tenantgate.credit_accounts set balance = 1000000",
        "select * from tenantgate.credit_slots for update",
        "update tenantgate.credit_slots set balance = balance + 1000",
        "select * from tenantgate.tools",
        "select * from tenantgate.approvals",
        "select * from tenantgate.tool_requests",
        "select * from tenantgate.denials",
        "select * from tenantgate.column_classes",
        "update tenantgate.scope_classes set max_class = 'sensitive'",
        "update tenantgate.approvals set status = 'approved'",
        "insert into tenantgate.audit_log (org_id, seq, decision, prev_hash, row_hash)"
        " values (gen_random_uuid(), 1, 'allowed', '\\x00', '\\x00')",
        "update tenantgate.tool_definitions set max_rows = 10000",
        "set role tenantgate_tool",
        "set role tenantgate_owner",
        "create table tenantgate.x (id int)",
        "create function tenantgate_tools.x() returns int language sql as 'select 1'",
    ],
)
def test_no_control_table_secret_lock_or_role_is_within_reach(
    mediator: psycopg.Connection[Any], world: World, acme: Claims, statement: str
) -> None:
    with mediator.transaction():
        ctx(mediator, world, acme)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            mediator.execute(statement)


def test_history_and_keys_of_another_session_stay_out_of_reach(
    mediator: psycopg.Connection[Any],
    world: World,
    acme: Claims,
    open_session: OpenFn,
    verifier: TokenVerifier,
    database: TestDatabase,
) -> None:
    beta = verifier.verify(open_session("Beta").token)
    org = world.northwind
    with database.connect(autocommit=True) as su:
        su.execute(
            "insert into tenantgate.session_messages (org_id, session_id, role, content)"
            " values (%s, %s, 'user', 'beta only')",
            (org.org_id, beta.session_id),
        )
        su.execute(
            "insert into tenantgate.customer_secrets (org_id, customer_id, ciphertext, key_id)"
            " values (%s, %s, '\\xdeadbeef', 'k1')",
            (org.org_id, org.customers["Beta"].customer_id),
        )
    with mediator.transaction():
        ctx(mediator, world, acme)
        assert mediator.execute("select count(*) from tenantgate.session_messages").fetchone() == (
            0,
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # keys come with a call only
            mediator.execute("select count(*) from tenantgate.current_upstream_credential()")


def test_hostile_tool_names_scopes_and_arguments_never_run_nor_charge(
    mediator: psycopg.Connection[Any],
    world: World,
    open_session: OpenFn,
    verifier: TokenVerifier,
    database: TestDatabase,
) -> None:
    org = world.northwind
    s = verifier.verify(open_session("Acme", scopes=["read:tickets"]).token)
    before = balance(database, org.org_id)
    for tool, args in [
        ("drop_everything", {}),
        ("issue_refund", {"invoice_id": 1, "amount_cents": 1}),  # scope not held
        ("get_customer_profile", {}),  # scope not held
        ("list_tickets", {"limit": 1, "cost": 0}),
        ("list_tickets", {"org_id": world.globex.org_id}),
        ("list_tickets", {"customer_id": org.customers["Beta"].customer_id}),
        ("list_tickets", {"limit": -5}),
        ("list_tickets", {"limit": "1; drop table demo.tickets"}),
        ("list_tickets", ["not", "an", "object"]),
        ("list_tickets__preview", {}),
        ("", {}),
    ]:
        out = call(mediator, world, s, tool, args)
        assert out["status"] in ("not_found", "invalid_arguments"), (tool, args, out)
        assert "result" not in out
    assert balance(database, org.org_id) == before
    assert {r[0] for r in audit(database, org.org_id)} == {"denied"}


def test_every_call_is_charged_exactly_the_catalog_cost_and_audited_allowed_once(
    mediator: psycopg.Connection[Any], world: World, acme: Claims, database: TestDatabase
) -> None:
    org = world.northwind
    before = balance(database, org.org_id)
    assert call(mediator, world, acme, "list_tickets", {})["status"] == "ok"
    assert call(mediator, world, acme, "account_health", {})["status"] == "ok"
    assert balance(database, org.org_id) == before - 1 - 2
    assert [r[0] for r in audit(database, org.org_id)] == ["allowed", "allowed"]
    with database.connect() as conn:
        amounts = conn.execute(
            "select tool_name, amount from tenantgate.credit_ledger where kind = 'spend'"
            " and org_id = %s order by tool_name",
            (org.org_id,),
        ).fetchall()
    assert amounts == [("account_health", 2), ("list_tickets", 1)]


def test_the_mediator_cannot_approve_an_operator_approval_it_asked_for(
    mediator: psycopg.Connection[Any], world: World, acme: Claims, database: TestDatabase
) -> None:
    org = world.northwind
    ticket = org.customers["Acme"].ticket_ids[0]
    args = {"ticket_id": ticket, "status": "closed"}
    pending = call(mediator, world, acme, "update_ticket_status", args)
    assert pending["status"] == "approval_required"
    answered = mediator.execute(
        "select tenantgate.approval_answer(%s, %s, %s, %s, true)",
        (
            org.org_id,
            org.customers["Acme"].customer_id,
            acme.session_secret,
            pending["approval_id"],
        ),
    ).fetchone()
    assert answered == ("not_found",)
    again = call(mediator, world, acme, "update_ticket_status", args)
    assert again["status"] == "approval_required"
    with database.connect() as conn:
        assert conn.execute(
            "select status from tenantgate.approvals where org_id = %s", (org.org_id,)
        ).fetchall() == [("pending",)]
        assert conn.execute(
            "select status from demo.tickets where org_id = %s and customer_id = %s"
            " and ticket_id = %s",
            (org.org_id, org.customers["Acme"].customer_id, ticket),
        ).fetchone() == ("open",)


def test_an_unverified_caller_writes_nothing_to_any_chain_and_is_recorded_bounded(
    mediator: psycopg.Connection[Any], world: World, acme: Claims, database: TestDatabase
) -> None:
    globex = world.globex
    claimed = (globex.org_id, str(uuid.uuid4()))
    seconds: dict[str, float] = {}
    for org_id in claimed:  # an org that exists, one that does not
        started = time.monotonic()
        seconds[org_id] = 0.0
        for _ in range(50):
            row = mediator.execute(
                CALL, (org_id, str(uuid.uuid4()), "guessed", None, "x" * 5000, Jsonb({}))
            ).fetchone()
            assert row == ({"status": "not_found"},)
        seconds[org_id] = time.monotonic() - started
    assert audit(database, globex.org_id) == []
    with database.connect() as conn:
        counts = conn.execute(
            "select claimed_org::text, count(*), max(length(tool_name))"
            " from tenantgate.denials where claimed_org = any(%s::uuid[]) group by 1",
            (list(claimed),),
        ).fetchall()
        suppressed = conn.execute(
            "select sum(suppressed) from tenantgate.denial_buckets"
            " where claimed_org = any(%s::uuid[])",
            (list(claimed),),
        ).fetchone()
    assert len(counts) == 2
    for org_id, n, width in counts:  # a burst of 20, then 1 a second; 64 characters each
        assert width == 64
        assert 20 <= n <= 20 + int(seconds[org_id]), (n, seconds[org_id])
    assert suppressed == (100 - sum(n for _, n, _ in counts),)


def test_refusals_of_a_verified_session_are_rate_limited(
    mediator: psycopg.Connection[Any], world: World, acme: Claims, database: TestDatabase
) -> None:
    started = time.monotonic()
    statuses = [call(mediator, world, acme, "no_such_tool", {})["status"] for _ in range(60)]
    seconds = time.monotonic() - started
    refused = statuses.count("not_found")
    # the "*refused*" bucket: a burst of 30, then 1 a second (a slow machine or a cluster may
    # take more than a second for the 60 calls)
    assert 30 <= refused <= 30 + int(seconds), (refused, seconds)
    assert statuses.count("rate_limited") == 60 - refused
    assert len(audit(database, world.northwind.org_id)) == refused


def test_a_session_secret_never_opens_another_customers_rows(
    mediator: psycopg.Connection[Any], world: World, acme: Claims
) -> None:
    out = call(mediator, world, acme, "list_tickets", {}, customer="Beta")
    assert out == {"status": "not_found"}
    mine = call(mediator, world, acme, "list_tickets", {})
    assert all(t["subject"].startswith("Acme") for t in mine["result"]["items"])
