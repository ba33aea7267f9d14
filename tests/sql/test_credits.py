"""Credit spend: never below zero under any concurrency, charged once per request id.

spend_credits is the gate's own function now (tenantgate.call_tool charges the catalog cost
through it); these tests call it as its owner would, with the session's context set, and check
that the mediator may not call it at all.
"""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from tests.factories import (
    Session,
    add_tenant,
    as_gate,
    as_session,
    call_tool,
    open_session,
    seed_demo_rows,
    set_context,
)
from tests.pg import TestDatabase

SPEND = "select charged, replayed, balance from tenantgate.spend_credits(%s, %s, %s)"


def balance(db: TestDatabase, org_id: uuid.UUID) -> int:
    with db.connect() as su:
        row = su.execute(
            "select balance from tenantgate.credit_accounts where org_id = %s", (org_id,)
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def funded(database: TestDatabase) -> Session:
    return open_session(database, add_tenant(database, credits=1000))


def test_64_concurrent_spenders_take_exactly_the_balance_and_never_more(
    database: TestDatabase, funded: Session
) -> None:
    successes: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(64)

    def spender(worker: int) -> None:
        ok = 0
        try:
            with database.connect() as conn:
                start.wait()
                for attempt in range(100):
                    with conn.transaction():
                        set_context(
                            conn, funded.tenant.org_id, funded.tenant.customer_id, funded.secret
                        )
                        row = conn.execute(SPEND, (f"w{worker}-a{attempt}", 1, "t")).fetchone()
                        ok += bool(row and row[0])
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)
        successes.append(ok)

    threads = [threading.Thread(target=spender, args=(w,)) for w in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(successes) == 1000
    assert balance(database, funded.tenant.org_id) == 0
    with database.connect() as su:
        charged = su.execute(
            "select count(*), sum(amount) from tenantgate.credit_ledger"
            " where kind = 'spend' and outcome = 'charged'"
        ).fetchone()
    assert charged == (1000, 1000)


def test_a_retried_request_id_is_charged_once_and_answers_the_same(
    database: TestDatabase, funded: Session
) -> None:
    with as_gate(database, funded) as conn:
        first = conn.execute(SPEND, ("req-1", 5, "list_tickets")).fetchone()
        again = conn.execute(SPEND, ("req-1", 5, "list_tickets")).fetchone()
    with as_gate(database, funded) as conn:
        later = conn.execute(SPEND, ("req-1", 5, "list_tickets")).fetchone()
    assert first == (True, False, 995)
    assert again == later == (True, True, 995)
    assert balance(database, funded.tenant.org_id) == 995


def test_concurrent_duplicates_of_one_request_id_are_charged_once(
    database: TestDatabase, funded: Session
) -> None:
    answers: list[tuple[object, ...]] = []
    start = threading.Barrier(16)

    def retry() -> None:
        with database.connect() as conn:
            start.wait()
            with conn.transaction():
                set_context(conn, funded.tenant.org_id, funded.tenant.customer_id, funded.secret)
                row = conn.execute(SPEND, ("same-request", 7, "t")).fetchone()
                assert row is not None
                answers.append(tuple(row))

    threads = [threading.Thread(target=retry) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 16
    assert sorted(a[1] for a in answers) == [False] + [True] * 15  # one first answer, 15 replays
    assert {(a[0], a[2]) for a in answers} == {(True, 993)}
    assert balance(database, funded.tenant.org_id) == 993


def test_a_refused_spend_answers_refused_without_changing_the_balance(
    database: TestDatabase,
) -> None:
    poor = open_session(database, add_tenant(database, credits=3))
    with as_gate(database, poor) as conn:
        assert conn.execute(SPEND, ("big", 5, "t")).fetchone() == (False, False, 3)
        assert conn.execute(SPEND, ("big", 5, "t")).fetchone() == (False, True, 3)
        assert conn.execute(SPEND, ("small", 3, "t")).fetchone() == (True, False, 0)
    assert balance(database, poor.tenant.org_id) == 0


def test_a_spend_rolls_back_with_the_tool_call_that_failed(
    database: TestDatabase, funded: Session
) -> None:
    with database.connect() as conn:

        def charge_then_fail() -> None:
            with conn.transaction():
                set_context(conn, funded.tenant.org_id, funded.tenant.customer_id, funded.secret)
                conn.execute(SPEND, ("doomed", 10, "t"))
                conn.execute("select 1 / 0")  # the tool's query fails after the charge

        with pytest.raises(psycopg.errors.DivisionByZero):
            charge_then_fail()
        with conn.transaction():
            set_context(conn, funded.tenant.org_id, funded.tenant.customer_id, funded.secret)
            assert conn.execute(SPEND, ("doomed", 10, "t")).fetchone() == (True, False, 990)


def test_a_request_id_reused_for_a_different_charge_is_refused(
    database: TestDatabase, funded: Session
) -> None:
    with as_gate(database, funded) as conn:
        conn.execute(SPEND, ("r", 1, "list_tickets"))
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="different charge"):
            conn.execute(SPEND, ("r", 2, "list_tickets"))


@pytest.mark.parametrize("amount", [0, -5])
def test_zero_or_negative_amounts_are_refused(
    database: TestDatabase, funded: Session, amount: int
) -> None:
    with (
        as_gate(database, funded) as conn,
        pytest.raises(psycopg.errors.InvalidParameterValue, match="must be positive"),
    ):
        conn.execute(SPEND, ("neg", amount, "t"))
    assert balance(database, funded.tenant.org_id) == 1000


def test_spending_without_a_verified_session_is_refused(
    database: TestDatabase, funded: Session
) -> None:
    with database.connect() as conn, conn.transaction():
        set_context(conn, funded.tenant.org_id, funded.tenant.customer_id, "guessed")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no verified session"):
            conn.execute(SPEND, ("x", 1, "t"))
    assert balance(database, funded.tenant.org_id) == 1000


def test_grants_are_idempotent_on_their_request_id(database: TestDatabase) -> None:
    tenant = add_tenant(database)
    with database.connect("tenantgate_admin") as conn:
        for _ in range(3):
            conn.execute("select tenantgate.grant_credits(%s, 50, 'invoice-42')", (tenant.org_id,))
    assert balance(database, tenant.org_id) == 50


def test_the_mediator_cannot_grant_itself_credits(database: TestDatabase, funded: Session) -> None:
    with as_session(database, funded) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            "select tenantgate.grant_credits(%s, 1000000, 'free')", (funded.tenant.org_id,)
        )


@pytest.mark.parametrize("amount", [1, 0, -5, 10**9])
def test_the_mediator_cannot_spend_any_amount_itself(
    database: TestDatabase, funded: Session, amount: int
) -> None:
    """It can charge no less (and no more) than the catalog cost: it cannot charge at all."""
    with (
        as_session(database, funded) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
    ):
        conn.execute(SPEND, ("m", amount, "list_tickets"))
    assert balance(database, funded.tenant.org_id) == 1000


def test_a_gate_call_charges_exactly_the_catalog_cost(
    database: TestDatabase, funded: Session
) -> None:
    seed_demo_rows(database, funded.tenant)
    with database.connect("tenantgate_admin") as admin:
        admin.execute(
            "update tenantgate.tools set credit_cost = 7 where org_id = %s"
            " and tool_name = 'list_tickets'",
            (funded.tenant.org_id,),
        )
    assert call_tool(database, funded, "list_tickets")["status"] == "ok"
    assert balance(database, funded.tenant.org_id) == 993
    assert call_tool(database, funded, "list_tickets")["status"] == "ok"
    assert balance(database, funded.tenant.org_id) == 986


def test_a_gate_call_without_enough_credit_answers_no_credit_and_reads_nothing(
    database: TestDatabase,
) -> None:
    tenant = add_tenant(database, credits=1)
    seed_demo_rows(database, tenant)
    session = open_session(database, tenant)
    assert call_tool(database, session, "list_tickets")["status"] == "ok"
    assert call_tool(database, session, "list_tickets") == {"status": "no_credit"}
    assert balance(database, tenant.org_id) == 0
