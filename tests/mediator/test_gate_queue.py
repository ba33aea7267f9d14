"""The gate's use of pooled connections: calls beyond the pool's size queue in the gate (a plain
FIFO), not in the pool's own queue, and each connection keeps one cursor for its statements.

The promises: every queued call still runs, once, and is charged and audited once; a call that
finds no connection free within the pool's timeout is answered 'unavailable' and leaves no charge
and no audit row behind; a statement that fails leaves its connection and cursor usable.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tenantgate.mediator import errors as E
from tenantgate.mediator.db import make_pool
from tenantgate.mediator.demo_data import World
from tenantgate.mediator.gate import Gate
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import Claims, TokenVerifier
from tests.mediator.conftest import OpenFn
from tests.pg import TestDatabase

pytestmark = pytest.mark.anyio


def _counts(database: TestDatabase, org_id: str) -> tuple[int, int]:
    """(charges in the ledger, audit rows, sealed or pending) of one org."""
    with psycopg.connect(database.superuser_dsn, autocommit=True) as su:
        su.execute("select tenantgate.audit_seal(%s)", (org_id,))
        charges = su.execute(
            "select count(*) from tenantgate.credit_ledger where org_id = %s and kind = 'spend'",
            (org_id,),
        ).fetchone()
        audited = su.execute(
            "select count(*) from tenantgate.audit_log where org_id = %s", (org_id,)
        ).fetchone()
    assert charges is not None
    assert audited is not None
    return int(charges[0]), int(audited[0])


@pytest.fixture
def acme(verifier: TokenVerifier, open_session: OpenFn) -> Claims:
    """Claims of a live session for Northwind's customer Acme."""
    return verifier.verify(open_session("Acme").token)


async def _gate(settings: Settings, **limits: float) -> Gate:
    pool = make_pool(settings.model_copy(update=limits))
    await pool.open(wait=True)
    return Gate(pool, settings)


async def test_calls_beyond_the_pool_size_wait_their_turn_and_each_runs_once(
    settings: Settings, world: World, acme: Claims, database: TestDatabase
) -> None:
    gate = await _gate(settings, pool_min_size=2, pool_max_size=2)
    org = world.orgs["Northwind"].org_id
    before = _counts(database, org)
    try:
        results = await asyncio.gather(*(gate.call(acme, "list_tickets", {}) for _ in range(12)))
    finally:
        await gate.pool.close()
    assert all(isinstance(r, dict) and r["items"] for r in results)
    charges, audited = _counts(database, org)
    assert (charges - before[0], audited - before[1]) == (12, 12)


async def test_a_call_finding_no_free_connection_in_time_is_unavailable_and_leaves_nothing(
    settings: Settings, world: World, acme: Claims, database: TestDatabase
) -> None:
    gate = await _gate(settings, pool_min_size=1, pool_max_size=1, pool_timeout=0.3)
    org = world.orgs["Northwind"].org_id
    before = _counts(database, org)
    try:
        # The only connection is busy for a second; the call gives up after 0.3 s.
        busy = asyncio.create_task(gate._one("select pg_sleep(1)", ()))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(gate.call(acme, "list_tickets", {}))
        await asyncio.sleep(0.1)
        # operators see the queue: the pool's statistics, hence /metrics' tenantgate_db_pool_*
        assert gate.pool.get_stats()["calls_waiting"] == 1
        with pytest.raises(E.Unavailable):
            await waiting
        assert gate.pool.get_stats()["calls_waiting"] == 0
        await busy
        # The turn it waited for was not lost: the next call runs.
        assert (await gate.call(acme, "list_tickets", {}))["items"]
    finally:
        await gate.pool.close()
    charges, audited = _counts(database, org)
    assert (charges - before[0], audited - before[1]) == (1, 1)


async def test_a_failed_statement_leaves_the_connection_ready_for_the_next_call(
    settings: Settings, acme: Claims
) -> None:
    gate = await _gate(settings, pool_min_size=1, pool_max_size=1)
    try:
        with pytest.raises(E.MediatorError):
            await gate._one("select 1 / 0", ())
        # the same connection (the pool has one) and its cursor answer the next call
        assert (await gate.call(acme, "list_tickets", {}))["items"]
        with pytest.raises(E.MediatorError):
            await gate._one("select 'x'::int", ())
        assert (await gate.call(acme, "list_tickets", {}))["items"]
    finally:
        await gate.pool.close()
