"""The audit log at scale: appends that never wait for the chain, sealing, anchors and retirement.

Every promise is checked from the position of whoever could break it: a call holding its org's
chain head (the others must not wait), the owner or a superuser editing rows (verification finds
the row), the mediator credential (it reaches no pending row and cannot seal).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from bench._audit_fill import fill
from tenantgate.cli.audit_seal import seal_pending
from tests.factories import add_tenant
from tests.pg import TestDatabase

APPEND = (
    "select seq, row_hash from tenantgate.audit_append_row(%s, null, null, null, %s,"
    " 'list_tickets', 'allowed', %s)"
)
VERIFY_FROM = (
    "select rows_checked, first_broken_seq, problem, last_seq, last_hash, pending"
    " from tenantgate.audit_verify_from(%s, %s, %s)"
)


def append(conn: psycopg.Connection[Any], org: uuid.UUID, n: int, tag: str = "r") -> None:
    """n appends, one transaction each, as the gate's entry points make them (owner's function)."""
    for i in range(n):
        with conn.transaction():
            conn.execute(APPEND, (org, f"{tag}-{i}", Jsonb({"rows": i})))


def verify_from(db: TestDatabase, org: uuid.UUID, seq: int | None = None,
                hash_: bytes | None = None) -> tuple[Any, ...]:
    with db.connect("tenantgate_admin") as conn:
        row = conn.execute(VERIFY_FROM, (org, seq, hash_)).fetchone()
    assert row is not None
    return tuple(row)


def counts(db: TestDatabase, org: uuid.UUID) -> tuple[int, int]:
    """(chained rows, pending rows) of one org."""
    with db.connect() as su:
        logged = su.execute("select count(*) from tenantgate.audit_log where org_id = %s",
                            (org,)).fetchone()
        pending = su.execute("select count(*) from tenantgate.audit_pending where org_id = %s",
                             (org,)).fetchone()
    assert logged is not None
    assert pending is not None
    return int(logged[0]), int(pending[0])


def head(db: TestDatabase, org: uuid.UUID) -> tuple[int, bytes]:
    with db.connect() as su:
        row = su.execute("select seq, head_hash from tenantgate.audit_heads where org_id = %s",
                         (org,)).fetchone()
    assert row is not None
    return int(row[0]), bytes(row[1])


def superuser_edit(db: TestDatabase, statement: str, params: tuple[Any, ...]) -> None:
    with db.connect() as su:
        su.execute("set session_replication_role = replica")  # past the append-only triggers
        su.execute(statement, params)


@pytest.fixture
def org(database: TestDatabase) -> uuid.UUID:
    return add_tenant(database).org_id


def test_a_call_seals_its_own_row_when_nobody_holds_the_head(database: TestDatabase,
                                                             org: uuid.UUID) -> None:
    with database.connect() as conn:
        conn.autocommit = True
        append(conn, org, 3)
        entry, row_hash = conn.execute(APPEND, (org, "r-4", Jsonb({}))).fetchone() or (0, 0)
        sealed = conn.execute("select seq, row_hash from tenantgate.audit_log"
                              " where org_id = %s and entry_id = %s", (org, entry)).fetchone()
    assert counts(database, org) == (4, 0)
    assert sealed == (4, row_hash)
    assert verify_from(database, org)[:3] == (4, None, None)


def test_appends_of_one_org_do_not_wait_for_a_held_chain_head(database: TestDatabase,
                                                              org: uuid.UUID) -> None:
    """32 writers of one org finish while another transaction holds the org's head row: each
    row is written at once and waits, committed, for the seal; then one unbroken chain."""
    with database.connect() as conn:
        conn.autocommit = True
        append(conn, org, 1)  # the head row exists
    writers, each = 32, 10
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            with database.connect() as conn:
                conn.autocommit = True
                conn.execute("set lock_timeout = '2s'")  # waiting on the head would fail here
                start.wait()
                append(conn, org, each, tag=f"w{i}")
        except BaseException as exc:
            errors.append(exc)

    with database.connect() as holder, holder.transaction():
        holder.execute("select 1 from tenantgate.audit_heads where org_id = %s for update",
                       (org,))
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert counts(database, org) == (1, writers * each)
        assert verify_from(database, org)[:3] == (1, None, None)  # the chain so far is intact
        assert verify_from(database, org)[5] == writers * each  # ... and the rest is pending
    with database.connect("tenantgate_admin") as admin:
        sealed = admin.execute("select sealed, head_seq, still_pending"
                               " from tenantgate.audit_seal(%s)", (org,)).fetchone()
    assert sealed == (writers * each, 1 + writers * each, 0)
    assert verify_from(database, org)[:3] == (1 + writers * each, None, None)


def test_concurrent_appends_and_seals_of_many_orgs_keep_one_unbroken_chain_each(
        database: TestDatabase) -> None:
    orgs = [add_tenant(database).org_id for _ in range(3)]
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            with database.connect() as conn:
                conn.autocommit = True
                append(conn, orgs[i % 3], 25, tag=f"w{i}")
        except BaseException as exc:
            errors.append(exc)

    def sealer() -> None:
        try:
            with database.connect("tenantgate_admin") as conn:
                conn.autocommit = True
                for _ in range(20):
                    for o in orgs:
                        conn.execute("select * from tenantgate.audit_seal(%s)", (o,))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(24)]
    threads.append(threading.Thread(target=sealer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with database.connect("tenantgate_admin") as admin:
        for o in orgs:
            admin.execute("select * from tenantgate.audit_seal(%s)", (o,))
        results = admin.execute("select org_id, rows_checked, first_broken_seq, problem"
                                " from tenantgate.audit_verify()").fetchall()
    assert sorted(results) == sorted((o, 200, None, None) for o in orgs)


def test_rows_of_one_seal_keep_their_entry_order(database: TestDatabase,
                                                 org: uuid.UUID) -> None:
    with database.connect() as conn:
        conn.autocommit = True
        append(conn, org, 1)
        with database.connect() as holder, holder.transaction():
            holder.execute("select 1 from tenantgate.audit_heads where org_id = %s for update",
                           (org,))
            append(conn, org, 5, tag="held")
        conn.execute("select * from tenantgate.audit_seal(%s)", (org,))
        rows = conn.execute("select seq, request_id from tenantgate.audit_log"
                            " where org_id = %s order by seq", (org,)).fetchall()
    assert rows == [(1, "r-0")] + [(2 + i, f"held-{i}") for i in range(5)]


@pytest.mark.parametrize(
    "statement",
    [
        "delete from tenantgate.audit_pending",
        "update tenantgate.audit_pending set decision = 'denied'",
        "truncate tenantgate.audit_pending",
    ],
)
def test_a_pending_row_leaves_only_by_being_sealed_even_for_the_owner(
        database: TestDatabase, org: uuid.UUID, statement: str) -> None:
    with database.connect() as conn:
        conn.autocommit = True
        append(conn, org, 1, tag="first")  # the head row exists, so it can be held
    with database.connect() as holder, holder.transaction():
        holder.execute("select 1 from tenantgate.audit_heads where org_id = %s for update",
                       (org,))
        with database.connect() as conn:
            conn.autocommit = True
            append(conn, org, 2)
            conn.execute("set role tenantgate_owner")
            with pytest.raises(psycopg.errors.InsufficientPrivilege,
                               match=r"sealed into the chain|append-only"):
                conn.execute(statement)
    assert counts(database, org) == (1, 2)


@pytest.mark.parametrize(
    "statement",
    [
        "select * from tenantgate.audit_pending",
        "delete from tenantgate.audit_pending",
        "insert into tenantgate.audit_pending (org_id, occurred_at, decision)"
        " values (gen_random_uuid(), now(), 'allowed')",
        "select * from tenantgate.audit_seal(gen_random_uuid())",
        "select * from tenantgate.audit_seal_org(gen_random_uuid(), 10, true)",
        "select * from tenantgate.audit_retire(now() - interval '1 year')",
        "select * from tenantgate.audit_partitions_ensure(now(), now())",
        "select nextval('tenantgate.audit_entry_seq')",
    ],
)
def test_the_mediator_reaches_no_pending_row_and_cannot_seal_or_retire(
        database: TestDatabase, org: uuid.UUID, statement: str) -> None:
    with (database.connect("tenantgate_mediator") as conn,
          pytest.raises(psycopg.errors.InsufficientPrivilege)):
        conn.execute(statement)


def _month_start(months_back: int) -> dt.datetime:
    first = dt.datetime.now(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(months_back):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return first


def _fill(db: TestDatabase, org: uuid.UUID, rows: int, months_back: int, months: int) -> None:
    """rows / months valid chained rows sealed in each of `months` whole months, starting
    months_back months ago."""
    with db.connect() as su:
        su.autocommit = True
        for m in range(months):
            start = _month_start(months_back - m)
            end = _month_start(months_back - m - 1)
            fill(su, str(org), rows // months, start, end - dt.timedelta(seconds=1), chunk=400)


def test_bulk_filled_rows_verify_like_sealed_ones(database: TestDatabase,
                                                  org: uuid.UUID) -> None:
    _fill(database, org, 900, months_back=3, months=3)
    with database.connect() as conn:
        conn.autocommit = True
        append(conn, org, 5)
    assert verify_from(database, org)[:3] == (905, None, None)


def test_a_retired_partition_leaves_a_verifiable_remainder(database: TestDatabase,
                                                           org: uuid.UUID) -> None:
    _fill(database, org, 900, months_back=3, months=3)  # 300 rows in each of 3 months
    with database.connect() as conn:
        conn.autocommit = True
        append(conn, org, 5)
        cutoff = _month_start(2)
        cut = conn.execute("select org_id, seq, head_hash, rows_retired"
                           " from tenantgate.audit_retire(%s)", (cutoff,)).fetchall()
    assert [(o, s, n) for o, s, _, n in cut] == [(org, 300, 300)]
    assert counts(database, org) == (605, 0)
    # from the cut the database recorded, and from the anchor kept outside it
    assert verify_from(database, org)[:4] == (605, None, None, 905)
    assert verify_from(database, org, 300, bytes(cut[0][2]))[:3] == (605, None, None)
    with database.connect("tenantgate_admin") as admin:
        assert admin.execute("select first_broken_seq from tenantgate.audit_verify(%s)",
                             (org,)).fetchall() == [(None,)]


def test_a_partition_dropped_behind_retire_is_found_where_rows_go_missing(
        database: TestDatabase, org: uuid.UUID) -> None:
    _fill(database, org, 900, months_back=3, months=3)
    middle = _month_start(2)
    with database.connect() as su:
        su.execute(f"drop table tenantgate.audit_log_p{middle:%Y%m}")
    rows_checked, broken, problem, *_ = verify_from(database, org)
    assert (rows_checked, broken) == (301, 301)
    assert "row 301 is missing (next row found is 601)" in str(problem)


def test_the_current_month_cannot_be_retired(database: TestDatabase, org: uuid.UUID) -> None:
    with database.connect() as conn, pytest.raises(psycopg.errors.InvalidParameterValue,
                                                   match="cannot retire"):
        conn.execute("select * from tenantgate.audit_retire(now() + interval '1 month')")


@pytest.fixture
def long_chain(database: TestDatabase, org: uuid.UUID) -> tuple[uuid.UUID, int, bytes]:
    """1,000 rows; the anchor an operator kept at row 500."""
    _fill(database, org, 1000, months_back=2, months=2)
    with database.connect() as su:
        row = su.execute("select row_hash from tenantgate.audit_log where org_id = %s"
                         " and seq = 500", (org,)).fetchone()
    assert row is not None
    return org, 500, bytes(row[0])


def test_a_tampered_row_after_the_anchor_is_found(database: TestDatabase,
                                                  long_chain: tuple[uuid.UUID, int, bytes]
                                                  ) -> None:
    org, seq, hash_ = long_chain
    superuser_edit(database, "update tenantgate.audit_log set detail = '{\"rows\": 999}'"
                             " where org_id = %s and seq = 700", (org,))
    rows_checked, broken, problem, *_ = verify_from(database, org, seq, hash_)
    assert (rows_checked, broken) == (200, 700)
    assert "edited" in str(problem)


def test_resuming_from_an_anchor_reads_only_the_rows_after_it(
        database: TestDatabase, long_chain: tuple[uuid.UUID, int, bytes]) -> None:
    """An edit before the anchor is outside what a resumed run reads (a full run finds it)."""
    org, seq, hash_ = long_chain
    superuser_edit(database, "update tenantgate.audit_log set detail = '{\"rows\": 999}'"
                             " where org_id = %s and seq = 100", (org,))
    assert verify_from(database, org, seq, hash_)[:4] == (500, None, None, 1000)
    assert verify_from(database, org)[:2] == (100, 100)


def test_an_anchor_the_chain_no_longer_holds_is_found(
        database: TestDatabase, long_chain: tuple[uuid.UUID, int, bytes]) -> None:
    org, seq, _ = long_chain
    rows_checked, broken, problem, *_ = verify_from(database, org, seq, bytes(32))
    assert (rows_checked, broken) == (0, seq)
    assert "anchored head" in str(problem)


def test_rows_removed_right_after_a_retired_anchor_are_found(
        database: TestDatabase, long_chain: tuple[uuid.UUID, int, bytes]) -> None:
    org, seq, hash_ = long_chain
    superuser_edit(database, "delete from tenantgate.audit_log where org_id = %s and seq <= 501",
                   (org,))
    rows_checked, broken, problem, *_ = verify_from(database, org, seq, hash_)
    assert (rows_checked, broken) == (1, 501)
    assert "missing" in str(problem)


def test_a_seq_written_twice_is_found(database: TestDatabase,
                                      long_chain: tuple[uuid.UUID, int, bytes]) -> None:
    """The primary key holds sealed_at (the partition key): verification catches duplicates."""
    org, _, _ = long_chain
    superuser_edit(database, """
        insert into tenantgate.audit_log
          (org_id, seq, occurred_at, decision, detail, prev_hash, row_hash, sealed_at)
        select org_id, seq, occurred_at, decision, detail, prev_hash, row_hash,
               sealed_at + interval '1 second'
          from tenantgate.audit_log where org_id = %s and seq = 800""", (org,))
    _, broken, problem, *_ = verify_from(database, org)
    assert broken == 801
    assert "row 800 appears more than once" in str(problem)


def test_a_malformed_anchor_is_refused_with_what_to_use(database: TestDatabase,
                                                        org: uuid.UUID) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="32-byte hash"):
        verify_from(database, org, 5, b"short")


def test_a_month_without_a_partition_keeps_calls_working_and_the_seal_makes_it(
        database: TestDatabase, org: uuid.UUID) -> None:
    with database.connect(autocommit=True) as su:
        su.execute(f"drop table tenantgate.audit_log_p{dt.datetime.now(dt.UTC):%Y%m}")
        append(su, org, 2)  # no partition to chain into: the rows wait, written
    assert counts(database, org) == (0, 2)
    with database.connect("tenantgate_admin", autocommit=True) as admin:
        [sealed] = seal_pending(admin)
    assert (sealed["sealed"], sealed["still_pending"]) == (2, 0)
    assert verify_from(database, org)[:3] == (2, None, None)
