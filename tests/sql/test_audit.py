"""The audit chain: append-only for everyone, one unbroken chain per org, edits found exactly."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.factories import (
    Session,
    Tenant,
    add_tenant,
    as_gate,
    call_tool,
    open_session,
    seed_demo_rows,
)
from tests.pg import TestDatabase

APPEND = "select seq, row_hash from tenantgate.append_audit(%s, %s, %s, %s)"


def append(db: TestDatabase, session: Session, n: int, decision: str = "allowed") -> None:
    """Append n rows through append_audit, as the gate's owner may (the mediator may not)."""
    with as_gate(db, session) as conn:
        for i in range(n):
            conn.execute(
                APPEND,
                (
                    f"req-{uuid.uuid4()}",
                    "list_tickets",
                    decision,
                    Jsonb({"rows": i, "args_sha256": "ab" * 32}),
                ),
            )


def verify(db: TestDatabase, org_id: uuid.UUID | None = None) -> list[tuple[object, ...]]:
    with db.connect("tenantgate_admin") as conn:
        return [
            tuple(r)
            for r in conn.execute(
                "select org_id, rows_checked, first_broken_seq, problem"
                " from tenantgate.audit_verify(%s)",
                (org_id,),
            ).fetchall()
        ]


@pytest.fixture
def chain(database: TestDatabase) -> Session:
    session = open_session(database, add_tenant(database))
    append(database, session, 10)
    return session


def test_an_intact_chain_verifies(database: TestDatabase, chain: Session) -> None:
    assert verify(database) == [(chain.tenant.org_id, 10, None, None)]


@pytest.mark.parametrize(
    "statement",
    [
        "update tenantgate.audit_log set decision = 'denied'",
        "delete from tenantgate.audit_log",
        "truncate tenantgate.audit_log",
        "update tenantgate.audit_heads set seq = 0",
        "insert into tenantgate.audit_log (org_id, seq, occurred_at, decision, prev_hash, row_hash)"
        " values (gen_random_uuid(), 1, now(), 'allowed', '\\x00', '\\x00')",
    ],
)
@pytest.mark.parametrize("role", ["tenantgate_mediator", "tenantgate_admin"])
def test_no_login_role_can_change_the_audit_log_directly(
    database: TestDatabase, chain: Session, role: str, statement: str
) -> None:
    with database.connect(role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "update tenantgate.audit_log set decision = 'denied' where seq = 3",
        "delete from tenantgate.audit_log where seq = 3",
        "truncate tenantgate.audit_log",
        "delete from tenantgate.audit_heads",
    ],
)
def test_even_the_owner_and_a_superuser_are_stopped_by_the_append_only_triggers(
    database: TestDatabase, chain: Session, statement: str
) -> None:
    for role in ("tenantgate_owner", None):
        with database.connect() as conn:
            if role:
                conn.execute(f"set role {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)


def test_a_superusers_edit_of_one_row_is_found_at_exactly_that_row(
    database: TestDatabase, chain: Session
) -> None:
    with database.connect() as su:
        su.execute("set session_replication_role = replica")  # skips the triggers
        su.execute("update tenantgate.audit_log set detail = '{\"rows\": 999}' where seq = 6")
    [(org, checked, broken, problem)] = verify(database)
    assert (org, checked, broken) == (chain.tenant.org_id, 6, 6)
    assert "edited" in str(problem)


def test_an_edit_that_also_rehashes_the_row_is_found_at_the_next_link(
    database: TestDatabase, chain: Session
) -> None:
    with database.connect() as su:
        su.execute("set session_replication_role = replica")
        su.execute("""
            update tenantgate.audit_log a
               set decision = 'denied',
                   row_hash = sha256(a.prev_hash || convert_to(tenantgate.audit_canonical(
                     a.org_id, a.seq, a.occurred_at, a.session_id, a.operator_id, a.customer_id,
                     a.request_id, a.tool_name, 'denied', a.detail), 'UTF8'))
             where seq = 4""")
    [(_, _, broken, problem)] = verify(database)
    assert broken == 5
    assert "prev_hash" in str(problem)


@pytest.mark.parametrize(("seq", "expected"), [(5, 5), (10, 10)])
def test_a_deleted_row_is_found_where_the_gap_or_the_head_mismatch_is(
    database: TestDatabase, chain: Session, seq: int, expected: int
) -> None:
    with database.connect() as su:
        su.execute("set session_replication_role = replica")
        su.execute("delete from tenantgate.audit_log where seq = %s", (seq,))
    [(_, _, broken, _)] = verify(database)
    assert broken == expected


def test_concurrent_appends_keep_one_unbroken_chain_per_org(database: TestDatabase) -> None:
    sessions = [open_session(database, add_tenant(database)) for _ in range(3)]
    start = threading.Barrier(24)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            start.wait()
            append(database, sessions[i % 3], 25)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with database.connect("tenantgate_admin") as admin:  # what `tenantgate audit seal` runs
        for s in sessions:
            left = admin.execute("select still_pending from tenantgate.audit_seal(%s)",
                                 (s.tenant.org_id,)).fetchone()
            assert left == (0,)
    results = verify(database)
    assert sorted(results) == sorted((s.tenant.org_id, 200, None, None) for s in sessions)


def test_chain_heads_can_be_read_and_anchored_outside_the_database(
    database: TestDatabase, chain: Session
) -> None:
    with database.connect("tenantgate_admin") as conn:
        heads = conn.execute(
            "select org_id, seq, head_hash from tenantgate.audit_chain_heads()"
        ).fetchall()
        last = conn.execute(
            "select seq, row_hash from tenantgate.audit_log"
            " where org_id = %s order by seq desc limit 1",
            (chain.tenant.org_id,),
        ).fetchone()
    assert heads == [(chain.tenant.org_id, last[0], last[1])] if last else False


def test_the_chain_can_be_recomputed_outside_postgres_from_an_export(
    database: TestDatabase, chain: Session
) -> None:
    with database.connect("tenantgate_admin") as conn:
        rows = conn.execute(
            "select prev_hash, row_hash, tenantgate.audit_canonical(org_id, seq, occurred_at,"
            " session_id, operator_id, customer_id, request_id, tool_name, decision, detail)"
            " from tenantgate.audit_log order by seq"
        ).fetchall()
    previous = bytes(32)
    for prev_hash, row_hash, canonical in rows:
        assert bytes(prev_hash) == previous
        assert hashlib.sha256(previous + canonical.encode()).digest() == bytes(row_hash)
        assert json.loads(canonical)["at_us"] > 0  # time as epoch microseconds: no TimeZone in it
        previous = bytes(row_hash)


def test_appending_without_a_verified_session_is_refused(
    database: TestDatabase, chain: Session
) -> None:
    with (
        database.connect() as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="no verified session"),
    ):
        conn.execute(APPEND, ("r", "t", "allowed", Jsonb({})))


@pytest.mark.parametrize(
    "call",
    [
        "select tenantgate.append_audit('r', 'list_tickets', 'allowed', '{}'::jsonb)",
        "select tenantgate.audit_denial(gen_random_uuid(), 'r', 'list_tickets', 'x', '{}')",
    ],
)
def test_the_mediator_can_neither_append_nor_deny_into_any_chain(
    database: TestDatabase, chain: Session, call: str
) -> None:
    """A compromised mediator writes no forged `allowed` row and floods no org's chain."""
    with database.connect("tenantgate_mediator") as conn, conn.transaction():
        conn.execute(
            "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true),"
            " set_config('app.session_secret', %s, true)",
            (str(chain.tenant.org_id), str(chain.tenant.customer_id), chain.secret),
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(call)
    assert verify(database) == [(chain.tenant.org_id, 10, None, None)]


def test_a_gate_call_is_audited_after_the_read_with_its_row_and_byte_counts(
    database: TestDatabase,
) -> None:
    tenant = add_tenant(database, credits=10)
    seed_demo_rows(database, tenant, tickets=3)
    session = open_session(database, tenant)
    answer = call_tool(database, session, "list_tickets", {"limit": 2}, request_key="k-1")
    assert answer["status"] == "ok"
    with database.connect() as su:
        row = su.execute(
            "select decision, tool_name, request_id, (detail->>'rows')::int,"
            " (detail->>'bytes')::int > 0, detail ? 'args_sha256'"
            " from tenantgate.audit_log where org_id = %s order by seq desc limit 1",
            (tenant.org_id,),
        ).fetchone()
    assert row == ("allowed", "list_tickets", "k-1", 2, True, True)
    assert verify(database, tenant.org_id) == [(tenant.org_id, 1, None, None)]


def test_denials_land_in_the_claimed_orgs_chain_and_unknown_orgs_answer_the_same(
    database: TestDatabase, chain: Session
) -> None:
    with database.connect() as conn:  # the owner's function; the mediator may not call it
        known = conn.execute(
            "select tenantgate.audit_denial(%s, 'r1', 'list_tickets', 'trust_check_failed', '{}')",
            (chain.tenant.org_id,),
        ).fetchall()
        unknown = conn.execute(
            "select tenantgate.audit_denial(%s, 'r2', 'list_tickets', 'trust_check_failed', '{}')",
            (uuid.uuid4(),),
        ).fetchall()
    assert known == unknown
    with database.connect() as su:
        row = su.execute(
            "select decision, session_id, detail->>'verified' from tenantgate.audit_log"
            " where request_id = 'r1'"
        ).fetchone()
        strays = su.execute(
            "select count(*) from tenantgate.audit_log where request_id = 'r2'"
        ).fetchone()
    assert row == ("denied", None, "false")
    assert strays == (0,)
    assert verify(database) == [(chain.tenant.org_id, 11, None, None)]


def test_unverified_tool_calls_are_recorded_outside_every_chain_and_unknown_orgs_answer_the_same(
    database: TestDatabase, chain: Session
) -> None:
    stranger = Session(
        Tenant(uuid.uuid4(), chain.tenant.operator_id, chain.tenant.connector_id, uuid.uuid4()),
        chain.session_id,
        chain.secret,
    )
    known = call_tool(database, chain, "list_tickets", secret="guessed")
    unknown = call_tool(database, stranger, "list_tickets")
    assert known == unknown == {"status": "not_found"}
    with database.connect() as su:
        denials = su.execute(
            "select claimed_org, tool_name, reason from tenantgate.denials order by occurred_at"
        ).fetchall()
    assert denials == [
        (chain.tenant.org_id, "list_tickets", "session_not_verified"),
        (stranger.tenant.org_id, "list_tickets", "session_not_verified"),
    ]
    assert verify(database) == [(chain.tenant.org_id, 10, None, None)]


def test_denial_records_are_rate_limited_per_claimed_org(
    database: TestDatabase, chain: Session
) -> None:
    for _ in range(60):
        assert call_tool(database, chain, "list_tickets", secret="guessed") == {
            "status": "not_found"
        }
    with database.connect() as su:
        recorded = su.execute(
            "select count(*) from tenantgate.denials where claimed_org = %s",
            (chain.tenant.org_id,),
        ).fetchone()
        suppressed = su.execute(
            "select suppressed from tenantgate.denial_buckets where claimed_org = %s",
            (chain.tenant.org_id,),
        ).fetchone()
    assert recorded is not None
    assert suppressed is not None
    assert 20 <= recorded[0] < 30  # a burst of 20, then about 1 per second
    assert recorded[0] + suppressed[0] == 60
