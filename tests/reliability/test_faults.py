"""Faults: a backend killed mid-transaction, concurrent retries, Postgres restarted under load.

Invariants checked after every run: no credit is charged without its call's `allowed` audit row
and no audit row without its charge (one statement, one transaction), the balance equals the
grants minus the charges, and a side effect retried with the same request key runs and is
charged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tenantgate.cli import pgserver
from tenantgate.cli.demo_schema import install_demo
from tenantgate.mediator import errors as E
from tenantgate.mediator.demo_data import World, seed
from tenantgate.mediator.gate import Gate
from tenantgate.mediator.service import Mediator
from tenantgate.mediator.sessions import SessionManager
from tenantgate.mediator.tokens import TokenVerifier
from tests.pg import ROLE_PASSWORDS, migrate, url_for
from tests.reliability.conftest import Sessions, make_settings

pytestmark = pytest.mark.anyio

CLEAN_ERRORS = {E.Unavailable().message, E.NotFound().message, "internal error"}


def ledger_invariants(superuser_dsn: str, org_id: str, granted: int) -> dict[str, int]:
    """Check the credit/audit invariants of one org; return counts for the caller's asserts.

    Every call is its own charge (a read retried with the same request key is charged again; a
    side effect's retry answers its first outcome and is not), so the invariant is one to one:
    per session and tool, as many charges as `allowed` audit rows, and the balance is the grants
    minus the charges.
    """
    with psycopg.connect(superuser_dsn, autocommit=True) as su:
        # Committed appends that found the chain head busy wait in audit_pending: seal them, as
        # the `tenantgate audit seal --follow` service does, before counting the chain.
        su.execute("select tenantgate.audit_seal(%s)", (org_id,))
        charges = su.execute(
            "select session_id, tool_name, count(*) from tenantgate.credit_ledger"
            " where org_id = %s and kind = 'spend' and outcome = 'charged'"
            " group by 1, 2 order by 1, 2",
            (org_id,),
        ).fetchall()
        audited = su.execute(
            "select session_id, tool_name, count(*) from tenantgate.audit_log"
            " where org_id = %s and decision = 'allowed' group by 1, 2 order by 1, 2",
            (org_id,),
        ).fetchall()
        charged = su.execute(
            "select count(*), coalesce(sum(amount), 0) from tenantgate.credit_ledger"
            " where org_id = %s and kind = 'spend' and outcome = 'charged'",
            (org_id,),
        ).fetchone()
        balance = su.execute(
            "select balance from tenantgate.credit_accounts where org_id = %s", (org_id,)
        ).fetchone()
        broken = su.execute(
            "select count(*) from tenantgate.audit_verify(%s) where first_broken_seq is not null",
            (org_id,),
        ).fetchone()
    assert charges == audited, "a credit was charged without its audit row, or the reverse"
    assert charged is not None
    assert balance == (granted - charged[1],)
    assert broken == (0,)
    return {"charged": int(charged[0]), "spent": int(charged[1])}


async def _wait_for_lock(superuser_dsn: str) -> int:
    """The pid of the mediator backend waiting on a lock inside tenantgate.call_tool."""
    for _ in range(500):
        with psycopg.connect(superuser_dsn, autocommit=True) as su:
            row = su.execute(
                "select pid from pg_stat_activity where usename = 'tenantgate_mediator'"
                " and wait_event_type = 'Lock' and query like '%%call_tool%%'"
            ).fetchone()
        if row:
            return int(row[0])
        await asyncio.sleep(0.02)
    raise AssertionError("the call never waited on the held lock")


async def test_a_backend_killed_mid_call_loses_nothing_and_a_retry_succeeds(
    database: Any, world: World, sessions: Sessions, gate: Gate
) -> None:
    """Killed after the charge and the read, while waiting to write its audit row: nothing stays."""
    _, claims = sessions.open("Acme")
    await gate.call(claims, "list_tickets", {"limit": 5})  # the org's chain head exists
    killed: list[str] = []
    keys = [f"kill-{i}" for i in range(12)]
    for i, key in enumerate(keys):
        if i % 3:
            out = await gate.call(claims, "list_tickets", {"limit": 5}, request_key=key)
            assert len(out["items"]) == 3
            continue
        locker = await psycopg.AsyncConnection.connect(database.superuser_dsn)
        try:
            # Appends wait for no chain lock (SKIP LOCKED); holding the audit tables in SHARE
            # mode makes the call's audit insert wait instead, chained or pending.
            await locker.execute(
                "lock table tenantgate.audit_log, tenantgate.audit_pending in share mode")
            call = asyncio.create_task(
                gate.call(claims, "list_tickets", {"limit": 5}, request_key=key)
            )
            pid = await _wait_for_lock(database.superuser_dsn)
            with psycopg.connect(database.superuser_dsn, autocommit=True) as su:
                su.execute("select pg_terminate_backend(%s)", (pid,))
            with pytest.raises(E.Unavailable):
                await call
            killed.append(key)
        finally:
            await locker.rollback()
            await locker.close()
    assert len(killed) == 4
    with psycopg.connect(database.superuser_dsn, autocommit=True) as su:
        for key in killed:  # the killed statement left no audit row and no request key
            assert su.execute(
                "select count(*) from tenantgate.audit_log where request_id = %s", (key,)
            ).fetchone() == (0,)
            assert su.execute(
                "select count(*) from tenantgate.tool_requests where request_key = %s", (key,)
            ).fetchone() == (0,)
    counts = ledger_invariants(database.superuser_dsn, claims.org_id, 10_000_000)
    assert counts == {"charged": 1 + 8, "spent": 9}  # the warm-up and the calls not killed
    for key in killed:  # the host retries with the same request key: it just runs
        out = await gate.call(claims, "list_tickets", {"limit": 5}, request_key=key)
        assert len(out["items"]) == 3
    counts = ledger_invariants(database.superuser_dsn, claims.org_id, 10_000_000)
    assert counts == {"charged": 13, "spent": 13}


async def test_concurrent_duplicates_of_one_side_effect_run_and_are_charged_once(
    database: Any, world: World, sessions: Sessions, gate: Gate
) -> None:
    org = world.northwind
    beta = org.customers["Beta"]
    with psycopg.connect(database.superuser_dsn, autocommit=True) as su:
        su.execute(
            "update tenantgate.tools set approval = 'none' where org_id = %s"
            " and tool_name = 'update_ticket_status'",
            (org.org_id,),
        )
    _, claims = sessions.open("Beta")
    args = {"ticket_id": beta.ticket_ids[0], "status": "solved"}
    outs = await asyncio.gather(
        *(gate.call(claims, "update_ticket_status", args, request_key="dup-1") for _ in range(16))
    )
    assert all(o == outs[0] for o in outs)
    counts = ledger_invariants(database.superuser_dsn, claims.org_id, 10_000_000)
    assert counts == {"charged": 1, "spent": 1}  # update_ticket_status costs 1
    with psycopg.connect(database.superuser_dsn, autocommit=True) as su:
        replays = su.execute(
            "select count(*) from tenantgate.audit_log where org_id = %s"
            " and request_id = 'dup-1' and decision = 'replayed'",
            (org.org_id,),
        ).fetchone()
    assert replays == (15,)


async def test_concurrent_reads_with_one_request_key_are_each_charged(
    database: Any, world: World, sessions: Sessions, gate: Gate
) -> None:
    """No sequence of calls gets data without a charge: a reused key buys no free read."""
    _, claims = sessions.open("Beta")
    outs = await asyncio.gather(
        *(gate.call(claims, "account_health", {}, request_key="dup-1") for _ in range(16))
    )
    assert all(o == outs[0] for o in outs)
    counts = ledger_invariants(database.superuser_dsn, claims.org_id, 10_000_000)
    assert counts == {"charged": 16, "spent": 32}  # account_health costs 2


def _restart(server: pgserver.RunningServer) -> None:
    """pg_ctl restart (fast): every connection is cut; options come from postmaster.opts."""
    bindir = pgserver.system_bindir()
    assert bindir is not None
    workdir = server._workdir
    assert workdir is not None
    command = [
        str(bindir / "pg_ctl"),
        "-D",
        str(workdir / "data"),
        "-m",
        "fast",
        "-w",
        "-l",
        str(workdir / "server.log"),
        "restart",
    ]
    subprocess.run(
        pgserver._as_server_user(command, workdir), capture_output=True, check=True, timeout=60
    )


@pytest.fixture(scope="module")
def own_server() -> Any:
    """A private system PostgreSQL (Debian's) that this module may restart."""
    if pgserver.system_bindir() is None:
        pytest.skip("no system PostgreSQL to restart (Debian package postgresql)")
    server = pgserver.start_system()
    try:
        yield server
    finally:
        server.stop()


async def test_postgres_restarted_under_load_fails_cleanly_and_recovers_on_its_own(
    own_server: pgserver.RunningServer, rel_signer: Any, public_pem_file: Path
) -> None:
    name = "restart_under_load"
    with psycopg.connect(own_server.dsn(), autocommit=True) as su:
        su.execute(f"create database {name}")
    migrate(url_for(own_server, name))
    with psycopg.connect(own_server.dsn(name), autocommit=True) as su:
        install_demo(su)
    world = seed(own_server.dsn(name), credits=10_000_000, rate_burst=100_000,
                 rate_per_second=100_000.0)
    dsn = own_server.dsn(
        name, user="tenantgate_mediator", password=ROLE_PASSWORDS["tenantgate_mediator"]
    )
    settings = make_settings(
        dsn, public_pem_file, pool_min_size=4, pool_max_size=8, pool_timeout=2.0
    )
    manager = SessionManager(own_server.dsn(name, user="tenantgate_session_manager"), rel_signer)
    org = world.northwind
    opened = manager.open(
        org_id=org.org_id,
        operator_id=org.operator_id,
        connector_id=org.connector_id,
        customer_id=org.customers["Acme"].customer_id,
        scopes=["read:tickets"],
        ttl_seconds=3600,
    )
    claims = TokenVerifier(settings).verify(opened.token)
    mediator = await Mediator.start(settings)
    log: list[tuple[float, bool, str]] = []  # (time, ok, error text)
    stop_at = time.monotonic() + 120
    restarted = asyncio.Event()
    recovered_after: list[float] = []

    async def caller() -> None:
        while time.monotonic() < stop_at:
            out = await mediator.call_tool(claims, "list_tickets", {"limit": 5})
            ok = not out["isError"]
            log.append((time.monotonic(), ok, "" if ok else out["content"][0]["text"]))
            if ok and restarted.is_set() and len([x for x in log if x[1] and x[0] > t_up[0]]) > 200:
                return
            await asyncio.sleep(0 if ok else 0.05)

    t_up = [0.0]
    tasks = [asyncio.create_task(caller()) for _ in range(16)]
    try:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(_restart, own_server)
        t_up[0] = time.monotonic()
        restarted.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    finally:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            await mediator.close()
    before = [x for x in log if x[0] < t_up[0]]
    after = [x for x in log if x[0] >= t_up[0]]
    failures = [x for x in log if not x[1]]
    assert any(x[1] for x in before), "no call succeeded before the restart"
    assert failures, "the restart cut no call: the test did not test anything"
    assert {x[2] for x in failures} <= CLEAN_ERRORS
    first_ok = min(x[0] for x in after if x[1])
    recovered_after.append(first_ok - t_up[0])
    assert recovered_after[0] < 10
    # once recovered, it stays recovered: the last 200 calls all succeeded
    assert all(x[1] for x in sorted(log)[-200:])
    counts = ledger_invariants(own_server.dsn(name), org.org_id, 10_000_000)
    print(
        f"restart under load: {len(log)} calls, {len(failures)} failed cleanly "
        f"({sorted({x[2] for x in failures})}), first success {recovered_after[0]:.2f} s after "
        f"the server was back, {counts['charged']} charged calls all audited"
    )
