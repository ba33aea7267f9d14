"""The gate on a Citus cluster: isolation, exact credits, unbroken audit chains, one node per call.

Calls go through the gate's entry points as the mediator makes them (`tenantgate.call_tool` and
`tenantgate.list_tools`, one statement each in autocommit), which Citus delegates to the worker
that holds the org. Tenants are built with tests/factories.py, as on a single PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.citus.cluster import DATABASE, Cluster, counters
from tests.factories import Session, add_tenant, open_session, seed_demo_rows
from tests.pg import TestDatabase

CALL = "select tenantgate.call_tool(%s, %s, %s, %s, %s, %s)"
LIST = "select tenantgate.list_tools(%s, %s, %s)"


def call(conn: psycopg.Connection[tuple[object, ...]], session: Session, request_key: str | None,
         tool: str = "list_tickets") -> str:
    """One tools/call as the mediator makes it; the answer's status."""
    t = session.tenant
    row = conn.execute(CALL, (t.org_id, t.customer_id, session.secret, request_key, tool,
                              Jsonb({}))).fetchone()
    assert row is not None
    return str(row[0]["status"])


def unlimited(db: TestDatabase, session: Session) -> Session:
    """Lift the catalog's rate limit for the session's tools (these tests hammer one session)."""
    with db.connect() as su:
        su.execute("update tenantgate.tools set rate_burst = 1000000, rate_per_second = 1000000"
                   " where org_id = %s", (session.tenant.org_id,))
    return session


def hammer(threads: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run `work(i)` on `threads` threads released at once; the exceptions they raised."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # reported by the caller, never swallowed
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return errors


@pytest.fixture(scope="module")
def db(cluster: Cluster) -> TestDatabase:
    return cluster.database


def test_each_session_lists_and_reads_only_its_own_customer_across_nodes(
        cluster: Cluster, db: TestDatabase) -> None:
    sessions = [open_session(db, add_tenant(db, credits=10)) for _ in range(4)]
    for n, s in enumerate(sessions):
        seed_demo_rows(db, s.tenant, tickets=1 + n)
    with psycopg.connect(cluster.coordinator.dsn(DATABASE)) as su:
        nodes = {cluster.node_of(su, s.tenant.org_id) for s in sessions}
    with db.connect("tenantgate_mediator", autocommit=True) as conn:
        for n, own in enumerate(sessions):
            for other in sessions:
                t = other.tenant
                listed = conn.execute(LIST, (t.org_id, t.customer_id, own.secret)).fetchone()
                assert listed is not None
                assert len(listed[0]) == (2 if own is other else 0)  # the two read:* tools
            row = conn.execute(CALL, (own.tenant.org_id, own.tenant.customer_id, own.secret,
                                      None, "list_tickets", Jsonb({}))).fetchone()
            assert row is not None
            assert row[0]["status"] == "ok"
            assert len(row[0]["result"]["items"]) == 1 + n
    assert nodes <= {w.port for w in cluster.workers}


def test_a_secret_of_one_org_admits_nothing_charges_nothing_and_audits_nothing_in_another(
        db: TestDatabase) -> None:
    victim, attacker = (open_session(db, add_tenant(db, credits=10)) for _ in range(2))
    seed_demo_rows(db, victim.tenant)
    v, a = victim.tenant, attacker.tenant
    attempts = [(v.org_id, v.customer_id, attacker.secret),   # another org's ids, own secret
                (v.org_id, a.customer_id, attacker.secret),   # victim org, own customer
                (a.org_id, v.customer_id, attacker.secret),   # own org, victim customer
                (v.org_id, v.customer_id, victim.secret[:-1] + "x")]  # a guessed secret
    with db.connect("tenantgate_mediator", autocommit=True) as conn:
        for n, (org, customer, secret) in enumerate(attempts):
            row = conn.execute(CALL, (org, customer, secret, f"steal-{n}", "list_tickets",
                                      Jsonb({}))).fetchone()
            assert row is not None
            assert row[0] == {"status": "not_found"}
    with db.connect() as su:
        for t in (v, a):
            assert su.execute("select balance from tenantgate.credit_accounts where org_id = %s",
                              (t.org_id,)).fetchone() == (10,)
            assert su.execute("select count(*) from tenantgate.audit_log where org_id = %s",
                              (t.org_id,)).fetchone() == (0,)


def test_the_mediator_reads_no_enrolled_table_directly_on_the_cluster(db: TestDatabase) -> None:
    session = open_session(db, add_tenant(db))
    seed_demo_rows(db, session.tenant)
    with db.connect("tenantgate_mediator", autocommit=True) as conn:
        for table in ("demo.tickets", "demo.invoices", "demo.customer_profiles"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"select count(*) from {table} where org_id = %s",
                             (session.tenant.org_id,))


def test_64_concurrent_callers_spend_exactly_the_balance_and_never_more(
        db: TestDatabase) -> None:
    balance = 300
    session = unlimited(db, open_session(db, add_tenant(db, credits=balance)))
    charged: list[int] = []

    def caller(worker: int) -> None:
        ok = 0
        with db.connect("tenantgate_mediator", autocommit=True) as conn:
            for attempt in range(8):  # 512 attempts against 300 credits
                status = call(conn, session, f"w{worker}-a{attempt}")
                # once the credits are gone, refusals are rate-limited like calls
                assert status in ("ok", "no_credit", "rate_limited"), status
                ok += status == "ok"
        charged.append(ok)

    assert hammer(64, caller) == []
    assert sum(charged) == balance
    with db.connect() as su:
        org = session.tenant.org_id
        assert su.execute("select balance from tenantgate.credit_accounts where org_id = %s",
                          (org,)).fetchone() == (0,)
        assert su.execute("select count(*), sum(amount) from tenantgate.credit_ledger"
                          " where org_id = %s and kind = 'spend' and outcome = 'charged'",
                          (org,)).fetchone() == (balance, balance)


def test_concurrent_appends_keep_one_unbroken_chain_per_org(db: TestDatabase) -> None:
    sessions = [unlimited(db, open_session(db, add_tenant(db, credits=1000))) for _ in range(3)]

    def writer(i: int) -> None:
        with db.connect("tenantgate_mediator", autocommit=True) as conn:
            for n in range(10):
                assert call(conn, sessions[i % 3], f"append-{i}-{n}") == "ok"

    assert hammer(24, writer) == []
    with db.connect("tenantgate_admin", autocommit=True) as conn:
        for session in sessions:
            org: uuid.UUID = session.tenant.org_id
            # Appends that found the head busy wait in audit_pending until sealed (what
            # `tenantgate audit seal` runs), then the chain holds all of them.
            assert conn.execute("select still_pending from tenantgate.audit_seal(%s)",
                                (org,)).fetchone() == (0,)
            assert conn.execute("select org_id, rows_checked, first_broken_seq, problem"
                                " from tenantgate.audit_verify(%s)", (org,)).fetchall() == [
                (org, 80, None, None)]
        seqs = conn.execute("select org_id, min(seq), max(seq), count(*) from tenantgate.audit_log"
                            " where org_id = any(%s) group by org_id",
                            ([s.tenant.org_id for s in sessions],)).fetchall()
    assert sorted(r[1:] for r in seqs) == [(1, 80, 80)] * 3


def test_a_tool_call_is_one_hop_to_the_orgs_worker_and_touches_no_other_node(
        cluster: Cluster, db: TestDatabase) -> None:
    session = unlimited(db, open_session(db, add_tenant(db, credits=100)))
    calls = 20
    with psycopg.connect(cluster.coordinator.dsn(DATABASE)) as su:
        home = cluster.node_of(su, session.tenant.org_id)
    with db.connect("tenantgate_mediator", autocommit=True) as conn:
        call(conn, session, "warm-up")  # the coordinator's connection to the worker
        before = counters(cluster)
        for i in range(calls):
            assert call(conn, session, f"call-{i}") == "ok"
    after = counters(cluster)
    delta = {port: tuple(a - b for a, b in zip(after[port], before[port], strict=True))
             for port in after}
    coordinator = cluster.coordinator.port
    assert delta[coordinator] == (0, calls, 0)        # one delegated statement per call, no fan-out
    statements, multi = delta[home][1], delta[home][2]
    assert delta[home][0] == 0                        # no connection opened: all local there
    assert multi == 0
    assert statements > 0
    # Not the same count every call: a charge that finds no slot able to cover it re-spreads the
    # org's slots, and an append that finds pending rows seals them; all of it on this node.
    assert statements >= calls
    for port, change in delta.items():
        if port not in (coordinator, home):
            assert change == (0, 0, 0)
    print(f"\nper call_tool: 1 hop, 1 node, {statements / calls:.1f} single-shard statements on it")


def plan_of(conn: psycopg.Connection[tuple[object, ...]], statement: str) -> str:
    return "\n".join(str(r[0]) for r in conn.execute(f"explain (costs off) {statement}"))


@pytest.mark.parametrize("statement", [
    "select tenantgate.call_tool('{org}', '{customer}', 's', 'r', 'list_tickets', '{{}}')",
    "select tenantgate.list_tools('{org}', '{customer}', 's')",
    "select * from tenantgate.trust_check('{org}', '{org}', '{customer}', 's')",
    "select * from tenantgate.live_sessions where org_id = '{org}' and customer_id = '{customer}'",
    "select seq, head_hash from tenantgate.audit_heads where org_id = '{org}' for update",
    "select seq, head_hash from tenantgate.audit_heads where org_id = '{org}'"
    " for update skip locked",
    "insert into tenantgate.audit_pending (org_id, occurred_at, decision, detail)"
    " values ('{org}', now(), 'allowed', '{{}}')",
    "insert into tenantgate.audit_log (org_id, seq, occurred_at, decision, detail, prev_hash,"
    " row_hash, sealed_at) values ('{org}', 1, now(), 'allowed', '{{}}', '\\x00', '\\x00', now())",
    "select slot, balance from tenantgate.credit_slots where org_id = '{org}' and balance >= 1"
    " for update skip locked limit 1",
    "update tenantgate.credit_slots set balance = balance - 1 where org_id = '{org}'"
    " and slot = 0 and balance >= 1",
    "insert into tenantgate.credit_ledger (org_id, request_id, kind, amount, outcome)"
    " values ('{org}', 'r', 'spend', 1, 'charged') on conflict (org_id, request_id) do nothing",
    "select * from tenantgate.rate_buckets where org_id = '{org}' for update",
    "select ticket_id, subject from demo.tickets where org_id = '{org}'"
    " and customer_id = '{customer}' order by created_at desc limit 20",
])
def test_each_per_org_statement_is_a_single_shard_router_plan_on_the_orgs_worker(
        cluster: Cluster, db: TestDatabase, statement: str) -> None:
    tenant = add_tenant(db)
    # Autocommit, as the mediator calls: inside a transaction block Citus runs a distributed
    # function on the coordinator instead of delegating it.
    with psycopg.connect(cluster.coordinator.dsn(DATABASE), autocommit=True) as su:
        home = cluster.node_of(su, tenant.org_id)
        plan = plan_of(su, statement.format(org=tenant.org_id, customer=tenant.customer_id))
    assert "Task Count: 1\n" in plan + "\n", plan
    assert f"port={home} " in plan, plan
