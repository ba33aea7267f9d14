"""The audit append of sql/89_pgcpu/10_audit.sql (the head and the waiting rows read in one
statement, audit_canonical inlined) writes the chain exactly as before: the same canonical text,
rows left pending sealed first, a busy head never waited for, one unbroken chain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.factories import add_tenant
from tests.pg import TestDatabase

APPEND = (
    "select seq, row_hash from tenantgate.audit_append_row(%s, null, null, null, %s,"
    " 'list_tickets', 'allowed', %s)"
)
# The canonical text as sql/40_functions/50_audit.sql wrote it, restated here, so a change of
# audit_canonical that changed a single byte of what the chain covers fails this test.
CANONICAL_OF_BEFORE = (
    "select pg_catalog.jsonb_build_object('org_id', a.org_id, 'seq', a.seq,"
    " 'at_us', (extract(epoch from a.occurred_at) * 1000000)::bigint,"
    " 'session_id', a.session_id, 'operator_id', a.operator_id, 'customer_id', a.customer_id,"
    " 'request_id', a.request_id, 'tool', a.tool_name, 'decision', a.decision,"
    " 'detail', a.detail)::text"
)


Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def org(database: TestDatabase) -> uuid.UUID:
    return add_tenant(database).org_id


def chain(db: TestDatabase, org: uuid.UUID) -> list[tuple[Any, ...]]:
    with db.connect() as su:
        return su.execute(
            "select seq, entry_id, request_id from tenantgate.audit_log where org_id = %s"
            " order by seq",
            (org,),
        ).fetchall()


@contextlib.contextmanager
def head_held(db: TestDatabase, org: uuid.UUID, lock_timeout: str) -> Iterator[Conn]:
    """After a first append, another transaction holds the org's chain head; yields an
    autocommit connection that gives up waiting for a lock after `lock_timeout`."""
    with db.connect() as conn:
        conn.autocommit = True
        conn.execute(APPEND, (org, "first", Jsonb({})))
    with db.connect() as holder, holder.transaction():
        holder.execute("select 1 from tenantgate.audit_heads where org_id = %s for update", (org,))
        with db.connect() as conn:
            conn.autocommit = True
            conn.execute(f"set lock_timeout = '{lock_timeout}'")
            yield conn


def verify(db: TestDatabase, org: uuid.UUID) -> tuple[Any, ...]:
    with db.connect("tenantgate_admin") as admin:
        row = admin.execute(
            "select rows_checked, first_broken_seq, problem, pending"
            " from tenantgate.audit_verify_from(%s, null, null)",
            (org,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_the_canonical_text_is_inlined_and_byte_for_byte_what_the_chain_covered_before(
    database: TestDatabase, org: uuid.UUID
) -> None:
    with database.connect() as conn:
        conn.autocommit = True
        for i, detail in enumerate([{}, {"rows": 3, "bytes": 120}, {"reason": 'é ☃ "q"'}]):
            conn.execute(APPEND, (org, f"r-{i}", Jsonb(detail)))
        conn.execute("set timezone = 'Pacific/Chatham'")  # neither may depend on these
        conn.execute("set datestyle = 'SQL, DMY'")
        pairs = conn.execute(
            "select tenantgate.audit_canonical(a.org_id, a.seq, a.occurred_at, a.session_id,"
            " a.operator_id, a.customer_id, a.request_id, a.tool_name, a.decision, a.detail),"
            f" ({CANONICAL_OF_BEFORE}) from tenantgate.audit_log a where a.org_id = %s",
            (org,),
        ).fetchall()
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "explain (verbose, costs off) select tenantgate.audit_canonical(a.org_id, a.seq,"
                " a.occurred_at, a.session_id, a.operator_id, a.customer_id, a.request_id,"
                " a.tool_name, a.decision, a.detail) from tenantgate.audit_log a"
            ).fetchall()
        )
    assert len(pairs) == 3
    assert all(new == old for new, old in pairs)
    assert "audit_canonical" not in plan  # inlined: no function call per row
    assert verify(database, org)[:3] == (3, None, None)


def test_an_append_that_finds_rows_pending_seals_them_before_its_own(
    database: TestDatabase, org: uuid.UUID
) -> None:
    with head_held(database, org, "2s") as conn:  # an append never waits for the head
        pending = [conn.execute(APPEND, (org, f"p-{i}", Jsonb({}))).fetchone() for i in range(3)]
    assert [row_hash for _, row_hash in pending if row_hash is not None] == []  # all pending
    with database.connect() as conn:
        conn.autocommit = True
        entry, row_hash = conn.execute(APPEND, (org, "last", Jsonb({}))).fetchone() or (0, None)
    assert row_hash is not None  # chained at once, after the three it sealed
    rows = chain(database, org)
    assert [r[2] for r in rows] == ["first", "p-0", "p-1", "p-2", "last"]
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[-1][1] == entry
    assert verify(database, org)[:4] == (5, None, None, 0)


def test_an_append_while_another_call_holds_the_head_waits_pending_not_for_the_lock(
    database: TestDatabase, org: uuid.UUID
) -> None:
    with head_held(database, org, "500ms") as conn:
        started = dt.datetime.now(dt.UTC)
        row = conn.execute(APPEND, (org, "while-held", Jsonb({}))).fetchone()
        waited = dt.datetime.now(dt.UTC) - started
    assert row is not None
    assert row[1] is None  # pending, not chained
    assert waited < dt.timedelta(milliseconds=500)  # and it did not wait for the lock
    with database.connect("tenantgate_admin") as admin:
        admin.execute("select tenantgate.audit_seal(%s)", (org,))
    assert verify(database, org)[:4] == (2, None, None, 0)


def test_the_mediator_cannot_run_the_append_or_the_canonical_text(
    database: TestDatabase, org: uuid.UUID
) -> None:
    with database.connect("tenantgate_mediator") as med:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            med.execute(APPEND, (org, "forged", Jsonb({})))
        med.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            med.execute(
                "select tenantgate.audit_canonical(%s, 1, now(), null, null, null, null, null,"
                " 'allowed', '{}')",
                (org,),
            )
