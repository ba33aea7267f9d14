"""Through a real PgBouncer in transaction mode: no cross-tenant rows, and the trap it guards."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tenantgate.cli import pgserver
from tenantgate.mediator.demo_data import World
from tests.factories import Tenant, open_session
from tests.pg import ROLE_PASSWORDS, TestDatabase
from tests.reliability import _pgbouncer
from tests.reliability._checks import READS, expect_rows, foreign_rows
from tests.reliability.conftest import Sessions, customer_of, make_settings, start_gate

pytestmark = pytest.mark.skipif(
    _pgbouncer.binary() is None, reason="Debian package pgbouncer is not installed"
)

MEDIATOR = "tenantgate_mediator"
CALLS = 10_000


def _tenant(world: World, customer: str) -> Tenant:
    org = next(o for o in world.orgs.values() if customer in o.customers)
    return Tenant(
        org.org_id,
        org.operator_id,
        org.connector_id,  # type: ignore[arg-type]
        org.customers[customer].customer_id,
    )


@pytest.mark.anyio
async def test_10000_interleaved_calls_through_pgbouncer_read_no_other_tenants_rows(
    pg_server: pgserver.RunningServer,
    database: TestDatabase,
    world: World,
    sessions: Sessions,
    public_pem_file: Path,
) -> None:
    opened = [
        sessions.open(c, org)
        for c, org in (("Acme", "Northwind"), ("Beta", "Northwind"), ("Gamma", "Globex"))
        for _ in range(8)
    ]
    beta = opened[8][1]
    with _pgbouncer.pgbouncer(
        pg_server, {MEDIATOR: ROLE_PASSWORDS[MEDIATOR]}, pool_size=4
    ) as bouncer:
        dsn = bouncer.dsn(database.name, MEDIATOR, ROLE_PASSWORDS[MEDIATOR])
        settings = make_settings(
            dsn, public_pem_file, prepare_threshold=None, pool_min_size=16, pool_max_size=16
        )
        gates = [await start_gate(settings), await start_gate(settings)]  # two "processes"
        served: Counter[str] = Counter()
        foreign: list[Any] = []
        failures: list[str] = []
        pollutions = [0]
        remaining = [CALLS]
        stop = asyncio.Event()

        async def caller(seed: int) -> None:
            rng = random.Random(seed)
            while remaining[0] > 0:
                remaining[0] -= 1
                _, claims = rng.choice(opened)
                tool = rng.choice(list(READS))
                out = await rng.choice(gates).call(claims, tool, dict(READS[tool]))
                customer = customer_of(world, claims)
                foreign.extend(foreign_rows(world, customer, tool, out))
                if not expect_rows(tool, out):
                    failures.append(f"{tool} for {customer}: {out!r}")
                served[customer] += 1

        async def polluter() -> None:
            # A careless client on the same PgBouncer sets Beta's context at SESSION level: it
            # sticks to whichever server connection it lands on; the gate's calls must not care.
            async with await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, prepare_threshold=None
            ) as conn:
                while not stop.is_set():
                    await conn.execute(
                        "select set_config('app.org_id', %s, false),"
                        " set_config('app.customer_id', %s, false),"
                        " set_config('app.session_secret', %s, false)",
                        (beta.org_id, beta.customer_id, beta.session_secret),
                    )
                    pollutions[0] += 1
                    await asyncio.sleep(0.005)

        pol = asyncio.create_task(polluter())
        try:
            await asyncio.wait_for(asyncio.gather(*(caller(i) for i in range(32))), timeout=300)
        finally:
            stop.set()
            await pol
            for g in gates:
                await g.pool.close()
        with psycopg.connect(database.superuser_dsn, autocommit=True) as su:
            row = su.execute(
                "select count(*) from pg_stat_activity where usename = %s and datname = %s",
                (MEDIATOR, database.name),
            ).fetchone()
    assert foreign == []
    assert failures == []
    assert sum(served.values()) == CALLS
    assert set(served) == {"Acme", "Beta", "Gamma"}
    assert pollutions[0] > 0
    # 32 client connections (and the polluter) shared at most 4 server connections
    assert row is not None
    assert row[0] <= 4


def test_a_session_level_set_leaks_to_the_next_client_through_pgbouncer_but_lends_the_gate_nothing(
    pg_server: pgserver.RunningServer, database: TestDatabase, world: World
) -> None:
    acme = open_session(database, _tenant(world, "Acme"))  # type: ignore[arg-type]
    context = (str(acme.tenant.org_id), str(acme.tenant.customer_id), acme.secret)
    call = "select tenantgate.call_tool(%s, %s, %s, null, 'list_tickets', '{}')"
    history = "select content from tenantgate.session_messages"
    with _pgbouncer.pgbouncer(
        pg_server, {MEDIATOR: ROLE_PASSWORDS[MEDIATOR]}, pool_size=1
    ) as bouncer:
        dsn = bouncer.dsn(database.name, MEDIATOR, ROLE_PASSWORDS[MEDIATOR])
        with (
            psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as a,
            psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as b,
        ):
            # BASELINE: the mediator's login reads no tenant table at all
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                b.execute("select count(*) from demo.tickets")

            # POSITIVE (what the mediator does): one statement of the gate, whose settings are
            # transaction-local; the next client on the same server connection finds none
            row = a.execute(call, context).fetchone()
            assert row is not None
            assert len(row[0]["result"]["items"]) == 3
            with a.transaction():
                a.execute(
                    "select set_config('app.org_id', %s, true),"
                    " set_config('app.customer_id', %s, true),"
                    " set_config('app.session_secret', %s, true)",
                    context,
                )
                a.execute(
                    "insert into tenantgate.session_messages (org_id, session_id, role, content)"
                    " values (%s, %s, 'user', 'Acme: private note')",
                    (acme.tenant.org_id, acme.session_id),
                )
            pid_b = b.execute("select pg_backend_pid()").fetchone()
            assert b.execute("select current_setting('app.session_secret', true)").fetchone() in (
                (None,),
                ("",),
            )
            assert b.execute(history).fetchall() == []

            # NEGATIVE (the trap): a session-level set_config (= SET) stays on the server
            # connection, and client b, which never set anything, reads Acme's chat history
            a.execute(
                "select set_config('app.org_id', %s, false),"
                " set_config('app.customer_id', %s, false),"
                " set_config('app.session_secret', %s, false)",
                context,
            )
            assert a.execute("select pg_backend_pid()").fetchone() == pid_b  # one server conn
            assert b.execute(history).fetchall() == [("Acme: private note",)]
            # ...but the gate sets and verifies its own context from its arguments: b, with
            # the leaked settings and a wrong secret, gets nothing
            wrong = (str(acme.tenant.org_id), str(acme.tenant.customer_id), "guessed")
            assert b.execute(call, wrong).fetchone() == ({"status": "not_found"},)


def test_server_side_prepared_statements_break_behind_pgbouncer_and_none_turns_them_off(
    pg_server: pgserver.RunningServer, database: TestDatabase
) -> None:
    """Why the mediator's `prepare_threshold` is a setting (None behind PgBouncer)."""
    with _pgbouncer.pgbouncer(
        pg_server, {MEDIATOR: ROLE_PASSWORDS[MEDIATOR]}, pool_size=1
    ) as bouncer:
        dsn = bouncer.dsn(database.name, MEDIATOR, ROLE_PASSWORDS[MEDIATOR])
        query = "select count(*) from tenantgate.tool_definitions where version > %s"
        # NEGATIVE: prepared at once (threshold 0), both clients name it _pg3_0 on one server
        # connection, and the second client's PREPARE collides with the first one's
        with (
            psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as a,
            psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as b,
        ):
            a.execute(query, (0,))
            with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
                b.execute(query, (0,))
        # POSITIVE: prepare_threshold=None never prepares; the same interleaving just works
        with (
            psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as a,
            psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as b,
        ):
            for _ in range(5):
                mine = a.execute(query, (0,)).fetchone()
                assert mine is not None
                assert mine[0] > 0
                assert b.execute(query, (0,)).fetchone() == mine
