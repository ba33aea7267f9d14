"""Credits in slots and split rate limits: one org's concurrent calls never overspend, never
overshoot a burst, and are refused only when the org's exact total is short.

The balance lives in 32 slot rows per org (sql/89_fastgate/10_credit_slots.sql) so that calls
of one org do not queue behind one row; credit_accounts is their exact sum. A busy rate limit
is split into slots the same way (20_rate_slots.sql).
"""

from __future__ import annotations

import collections
import threading
import uuid

import psycopg
import pytest

from tests.factories import Session, add_tenant, call_tool, open_session, seed_demo_rows
from tests.pg import TestDatabase

CALL = "select tenantgate.call_tool(%s, %s, %s, null, 'list_tickets', '{}')"


def books(db: TestDatabase, org_id: uuid.UUID) -> tuple[int, int, int, int]:
    """(balance, charged in the ledger, allowed audit rows, slots)."""
    with db.connect() as su:
        # Appends that found the chain head busy wait in audit_pending: seal them first, as
        # `tenantgate audit seal` would, so every allowed call is counted in the chain.
        su.execute("select tenantgate.audit_seal(%s)", (org_id,))
        row = su.execute(
            "select (select balance from tenantgate.credit_accounts where org_id = %(o)s),"
            " (select coalesce(sum(amount), 0) from tenantgate.credit_ledger"
            "   where org_id = %(o)s and kind = 'spend' and outcome = 'charged'),"
            " (select count(*) from tenantgate.audit_log"
            "   where org_id = %(o)s and decision = 'allowed'),"
            " (select count(*) from tenantgate.credit_slots where org_id = %(o)s)",
            {"o": org_id},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def set_catalog(db: TestDatabase, org_id: uuid.UUID, **columns: float) -> None:
    with db.connect("tenantgate_admin") as conn:
        for column, value in columns.items():
            conn.execute(
                psycopg.sql.SQL(
                    "update tenantgate.tools set {} = %s where org_id = %s"
                    " and tool_name = 'list_tickets'"
                ).format(psycopg.sql.Identifier(column)),
                (value, org_id),
            )


def hammer(
    db: TestDatabase, session: Session, callers: int, attempts: int, stop_after_refusals: int = 0
) -> collections.Counter[str]:
    """`callers` threads, one mediator connection each, calling list_tickets `attempts` times
    (or until `stop_after_refusals` no_credit answers in all); the answers' statuses."""
    statuses: collections.Counter[str] = collections.Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(callers)
    t = session.tenant

    def caller() -> None:
        try:
            with db.connect("tenantgate_mediator", autocommit=True) as conn:
                start.wait()
                for _ in range(attempts):
                    row = conn.execute(CALL, (t.org_id, t.customer_id, session.secret)).fetchone()
                    assert row is not None
                    with lock:
                        statuses[str(row[0]["status"])] += 1
                        if stop_after_refusals and statuses["no_credit"] >= stop_after_refusals:
                            return
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    return statuses


@pytest.fixture
def one_org(database: TestDatabase) -> Session:
    tenant = add_tenant(database, credits=200)
    seed_demo_rows(database, tenant)
    set_catalog(database, tenant.org_id, rate_burst=1_000_000, rate_per_second=1_000_000)
    return open_session(database, tenant)


def test_32_concurrent_callers_of_one_org_spend_exactly_its_balance_and_never_more(
    database: TestDatabase, one_org: Session
) -> None:
    assert books(database, one_org.tenant.org_id)[0::3] == (200, 32)  # spread over 32 slots
    statuses = hammer(database, one_org, callers=32, attempts=40, stop_after_refusals=64)
    assert set(statuses) <= {"ok", "no_credit"}
    assert statuses["ok"] == 200
    assert books(database, one_org.tenant.org_id)[:3] == (0, 200, 200)


def test_a_charge_no_single_slot_covers_is_taken_from_the_exact_total(
    database: TestDatabase,
) -> None:
    tenant = add_tenant(database, credits=32)  # one credit in each of the 32 slots
    session = open_session(database, tenant)
    set_catalog(database, tenant.org_id, credit_cost=3)
    assert call_tool(database, session, "list_tickets")["status"] == "ok"
    assert books(database, tenant.org_id)[:2] == (29, 3)
    with database.connect() as su:
        spread = su.execute(
            "select max(balance) - min(balance) from tenantgate.credit_slots where org_id = %s",
            (tenant.org_id,),
        ).fetchone()
    assert spread == (1,)  # what was left is spread evenly again


def test_a_call_is_refused_for_credit_only_when_the_orgs_total_is_short(
    database: TestDatabase,
) -> None:
    tenant = add_tenant(database, credits=2)
    session = open_session(database, tenant)
    set_catalog(database, tenant.org_id, credit_cost=3)
    assert call_tool(database, session, "list_tickets")["status"] == "no_credit"
    assert books(database, tenant.org_id)[:2] == (2, 0)
    with database.connect("tenantgate_admin") as conn:
        conn.execute("select tenantgate.grant_credits(%s, 1, 'top-up')", (tenant.org_id,))
    assert call_tool(database, session, "list_tickets")["status"] == "ok"
    assert books(database, tenant.org_id)[:2] == (0, 3)


def test_the_balance_is_the_sum_of_the_slots_and_setting_it_never_goes_below_zero(
    database: TestDatabase,
) -> None:
    tenant = add_tenant(database, credits=10)
    with database.connect() as su:
        su.execute(
            "update tenantgate.credit_accounts set balance = 77 where org_id = %s", (tenant.org_id,)
        )
        su.commit()
        assert su.execute(
            "select sum(balance), count(*) from tenantgate.credit_slots where org_id = %s",
            (tenant.org_id,),
        ).fetchone() == (77, 32)
        with pytest.raises(psycopg.errors.CheckViolation):
            su.execute(
                "update tenantgate.credit_accounts set balance = -1 where org_id = %s",
                (tenant.org_id,),
            )
        su.rollback()
        with pytest.raises(psycopg.errors.CheckViolation):
            su.execute(
                "update tenantgate.credit_slots set balance = balance - 3 where org_id = %s",
                (tenant.org_id,),
            )
    assert books(database, tenant.org_id)[0] == 77


def test_a_split_rate_limit_admits_no_more_than_its_burst_under_32_concurrent_callers(
    database: TestDatabase,
) -> None:
    tenant = add_tenant(database, credits=100_000)
    seed_demo_rows(database, tenant)
    # burst 256: 32 slots of 8 tokens; the refill (1 token per 10,000 s) adds none meanwhile
    set_catalog(database, tenant.org_id, rate_burst=256, rate_per_second=0.0001)
    session = open_session(database, tenant)
    statuses = hammer(database, session, callers=32, attempts=12)
    assert statuses == {"ok": 256, "rate_limited": 32 * 12 - 256}
    with database.connect() as su:
        assert su.execute(
            "select count(*), sum(tokens)::int from tenantgate.rate_buckets"
            " where org_id = %s and tool_name = 'list_tickets'",
            (tenant.org_id,),
        ).fetchone() == (32, 0)
