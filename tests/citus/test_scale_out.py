"""Moving a running single-node install onto the cluster, and living with it afterwards.

A second database on the same nodes starts as a single-node install would be just before scaling
out: migrated with `tenantgate db upgrade` (to 0007, so a later revision is left to apply after
distribution), the demo tools applied, tenants with rows, spent credits and audit chains. Then
`tenantgate db distribute` moves it while a reader watches the locks; then the gate goes on, a
tools file is applied, and `db upgrade` brings the newer revision, as a DBA would do in that order.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.citus.cluster import Cluster, counters, migrate_and_install_demo, new_database
from tests.cli.conftest import ok, run
from tests.factories import Session, add_tenant, open_session, seed_demo_rows
from tests.pg import TestDatabase

NAME = "tg_scale_out"
CALLS_BEFORE = 6  # audited calls per org while the install is still on one node
CALL = "select tenantgate.call_tool(%s, %s, %s, %s, %s, %s)"
EXTRA_TOOL = """
version: 1
tools:
  count_open_tickets:
    kind: sql
    title: Count open tickets
    description: How many open tickets the current customer has.
    parameters: []
    statement: |
      select count(*) as open_tickets
      from demo.tickets
      where org_id = :org_id and customer_id = :customer_id and status = 'open'
    columns: {open_tickets: demo.tickets.ticket_id}
    access: read
    returns: one
    catalog: {scope: read:tickets, cost: 1}
"""


# A partitioned tenant table of the user's (the shape of time-partitioned audit or event tables):
# keyed by org_id first, enrolled like any table of theirs.
PARTITIONED = """
create table demo.ticket_events (
  org_id uuid not null, customer_id uuid not null, event_id bigint not null,
  at timestamptz not null, what text not null,
  primary key (org_id, event_id, at)
) partition by range (at);
create table demo.ticket_events_2026_11 partition of demo.ticket_events
  for values from ('2026-11-01') to ('2026-12-01');
create table demo.ticket_events_2026_12 partition of demo.ticket_events
  for values from ('2026-12-01') to ('2027-01-01');
"""


def add_partitioned_table(db: TestDatabase, sessions: list[Session]) -> None:
    with db.connect(autocommit=True) as su:
        su.execute(PARTITIONED)
    ok(run(["db", "enrol", "demo.ticket_events"], dsn=db.superuser_dsn))
    with db.connect() as su:
        for n, session in enumerate(sessions):
            for day in ("2026-11-20", "2026-12-20"):
                su.execute("insert into demo.ticket_events values (%s, %s, %s, %s, 'opened')",
                           (session.tenant.org_id, session.tenant.customer_id, n, day))


@dataclass
class ScaleOut:
    """The second database and what was observed while it moved."""

    db: TestDatabase
    sessions: list[Session]
    upgraded: str  # what `db upgrade` said on the coordinator before distribution
    rows_before: dict[str, tuple[int, str]]  # table -> (row count, digest of its rows)
    rows_after: dict[str, tuple[int, str]]
    locks: dict[str, set[str]] = field(default_factory=dict)  # table -> modes distribute held
    reader_waited: bool = False  # a plain SELECT of a tenant table timed out during distribute
    seconds: float = 0.0


def tenant_tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    rows = conn.execute(
        "select format('%I.%I', n.nspname, c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('tenantgate', 'demo') and c.relkind in ('r', 'p')"
        "   and not c.relispartition and exists (select 1 from pg_attribute a"
        "     where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped)"
        " order by 1").fetchall()
    return [str(r[0]) for r in rows]


def snapshot(db: TestDatabase) -> dict[str, tuple[int, str]]:
    """Per tenant table: its row count and a digest of its rows (text form, sorted)."""
    out = {}
    with db.connect() as su:
        for table in tenant_tables(su):
            rows = sorted(str(r[0]) for r in su.execute(f"select t::text from {table} t"))
            out[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return out


def call(db: TestDatabase, session: Session, key: str, tool: str = "list_tickets",
         conn: psycopg.Connection[tuple[object, ...]] | None = None) -> dict[str, object]:
    """One tools/call as the mediator makes it (on `conn`, or a new mediator connection)."""
    t = session.tenant
    with contextlib.ExitStack() as stack:
        if conn is None:
            conn = stack.enter_context(db.connect("tenantgate_mediator", autocommit=True))
        row = conn.execute(CALL, (t.org_id, t.customer_id, session.secret, key, tool,
                                  Jsonb({}))).fetchone()
    assert row is not None
    return dict(row[0])


def watch_locks(db: TestDatabase, running: threading.Event, found: ScaleOut) -> None:
    """While `db distribute` runs: the lock modes its backend holds, and whether a reader of
    demo.tickets has to wait."""
    with db.connect(autocommit=True) as watcher:
        while running.is_set():
            for table, mode in watcher.execute(
                    "select l.relation::regclass::text, l.mode from pg_locks l"
                    " join pg_stat_activity a on a.pid = l.pid"
                    " where a.application_name = 'tenantgate-cli' and l.granted"
                    "   and l.relation is not null and l.database = ("
                    "     select oid from pg_database where datname = current_database())"
                    ).fetchall():
                found.locks.setdefault(str(table), set()).add(str(mode))
            if "AccessExclusiveLock" in found.locks.get("demo.tickets", set()):
                try:
                    with db.connect() as reader:
                        reader.execute("set lock_timeout = '200ms'")
                        reader.execute("select count(*) from demo.tickets").fetchone()
                except psycopg.errors.LockNotAvailable:
                    found.reader_waited = True
            time.sleep(0.02)


@pytest.fixture(scope="module")
def scale_out(cluster: Cluster) -> ScaleOut:
    db = new_database(cluster, NAME)
    upgraded = migrate_and_install_demo(cluster.coordinator, NAME, "0007")
    sessions = []
    for n in range(3):
        session = open_session(db, add_tenant(db, credits=100))
        seed_demo_rows(db, session.tenant, tickets=2 + n)
        for i in range(CALLS_BEFORE):
            assert call(db, session, f"before-{i}")["status"] == "ok"
        sessions.append(session)
    add_partitioned_table(db, sessions)
    before = snapshot(db)
    found = ScaleOut(db, sessions, upgraded, before, {})
    running = threading.Event()
    running.set()
    watcher = threading.Thread(target=watch_locks, args=(db, running, found))
    watcher.start()
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("tenantgate")), "db", "distribute", "--dsn",
             db.superuser_dsn], capture_output=True, text=True, timeout=600, check=False)
    finally:
        running.clear()
        watcher.join()
    found.seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    found.rows_after = snapshot(db)
    return found


def test_db_upgrade_on_a_coordinator_needs_no_citus_setting_from_the_dba(
        scale_out: ScaleOut) -> None:
    assert "Citus coordinator, not distributed yet" in scale_out.upgraded
    assert "DDL propagation off" in scale_out.upgraded


def test_db_upgrade_refuses_a_worker_in_one_line_naming_the_coordinator(cluster: Cluster) -> None:
    result = run(["db", "upgrade"], dsn=cluster.workers[0].dsn("tenantgate"))
    assert result.exit_code == 1
    assert "this is a Citus worker" in result.stderr
    assert "on the coordinator" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_distributing_tables_that_hold_data_keeps_every_row(scale_out: ScaleOut) -> None:
    before, after = scale_out.rows_before, scale_out.rows_after
    assert before == after
    assert before["tenantgate.audit_log"][0] == 3 * CALLS_BEFORE
    assert before["demo.tickets"][0] == 2 + 3 + 4
    with scale_out.db.connect() as su:
        methods = dict(su.execute(
            "select logicalrelid::regclass::text, partmethod from pg_dist_partition").fetchall())
    assert all(methods.get(table) == "h" for table in after if table != "tenantgate.orgs")
    print(f"\n{sum(n for n, _ in after.values())} rows in {len(after)} tenant tables moved by "
          f"`db distribute` in {scale_out.seconds:.1f} s")


def test_audit_chains_written_on_one_node_verify_and_continue_after_distribution(
        scale_out: ScaleOut) -> None:
    db = scale_out.db
    for session in scale_out.sessions:
        assert call(db, session, "after-0")["status"] == "ok"
    with db.connect("tenantgate_admin", autocommit=True) as admin:
        for session in scale_out.sessions:
            org = session.tenant.org_id
            assert admin.execute("select rows_checked, first_broken_seq, problem"
                                 " from tenantgate.audit_verify(%s)", (org,)).fetchall() == [
                (CALLS_BEFORE + 1, None, None)]
    with db.connect() as su:
        for session in scale_out.sessions:
            assert su.execute("select balance from tenantgate.credit_accounts where org_id = %s",
                              (session.tenant.org_id,)).fetchone() == (100 - CALLS_BEFORE - 1,)


def test_db_distribute_blocks_writes_to_every_tenant_table_and_reads_of_rewritten_ones(
        scale_out: ScaleOut) -> None:
    """What the README says about moving a live install: one transaction that holds at least
    EXCLUSIVE (writes wait, reads go on) on every tenant table it distributes, and ACCESS
    EXCLUSIVE (reads wait too) on those whose policies, triggers or foreign keys it rewrites."""
    held = scale_out.locks
    strongest = {table: "AccessExclusiveLock" if "AccessExclusiveLock" in modes else
                 "ExclusiveLock" if "ExclusiveLock" in modes else "weaker"
                 for table, modes in held.items() if table in scale_out.rows_before}
    assert set(strongest) == set(scale_out.rows_before)
    assert "weaker" not in strongest.values(), strongest
    assert strongest["demo.tickets"] == "AccessExclusiveLock"  # its policy is rewritten
    assert scale_out.reader_waited
    exclusive = sorted(t for t, mode in strongest.items() if mode == "ExclusiveLock")
    print(f"\n`db distribute` held ACCESS EXCLUSIVE on {len(strongest) - len(exclusive)} tenant "
          f"tables, EXCLUSIVE only on {len(exclusive)}: {', '.join(exclusive)}")


def test_a_tool_applied_after_distribution_reaches_every_worker_and_runs_in_one_hop(
        cluster: Cluster, scale_out: ScaleOut, tmp_path: Path) -> None:
    db = scale_out.db
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA_TOOL)
    repo_tools = Path(__file__).resolve().parents[2] / "tools" / "demo.yaml"
    ok(run(["tools", "apply", str(repo_tools), str(extra)], dsn=db.superuser_dsn))
    session = scale_out.sessions[2]
    t = session.tenant
    with db.connect() as su:
        on_workers = su.execute(
            "select result from run_command_on_workers($$select count(*) from pg_proc"
            " where proname = 'count_open_tickets'"
            " and pg_get_userbyid(proowner) = 'tenantgate_tool'$$)").fetchall()
        su.execute("insert into tenantgate.tools (org_id, connector_id, tool_name,"
                   " required_scope, credit_cost) values (%s, %s, 'count_open_tickets',"
                   " 'read:tickets', 1)", (t.org_id, t.connector_id))
        su.commit()
        home = cluster.node_of(su, t.org_id)
        tool_role_logs_in = su.execute("select rolcanlogin from pg_roles"
                                       " where rolname = 'tenantgate_tool'").fetchone()
    assert on_workers == [("1",)] * len(cluster.workers)
    assert tool_role_logs_in == (False,)  # created as the DBA, then handed to the tool role
    with db.connect("tenantgate_mediator", autocommit=True) as conn:
        # the warm-up opens the coordinator's connection to the worker, as a pooled one has
        assert call(db, session, "warm-up", "count_open_tickets", conn)["status"] == "ok"
        before = counters(cluster, NAME)
        answers = [call(db, session, f"count-{i}", "count_open_tickets", conn)
                   for i in range(5)]
    after = counters(cluster, NAME)
    assert [a["status"] for a in answers] == ["ok"] * 5
    assert answers[0]["result"] == {"open_tickets": 4}  # seed_demo_rows: 2 + 2 open tickets
    delta = {port: tuple(a - b for a, b in zip(after[port], before[port], strict=True))
             for port in after}
    assert delta[cluster.coordinator.port] == (0, 5, 0)  # one delegated statement per call
    assert delta[home][0] == 0
    assert delta[home][2] == 0
    for worker in cluster.workers:
        if worker.port != home:
            assert delta[worker.port] == (0, 0, 0)


def test_db_upgrade_after_distribution_propagates_and_names_what_to_distribute_next(
        cluster: Cluster, scale_out: ScaleOut) -> None:
    db = scale_out.db
    refused = run(["db", "upgrade"], dsn=db.superuser_dsn)  # head: 0009 and 0010 rebuild tables
    assert refused.exit_code != 0
    said = " ".join(refused.stderr.split())
    assert "revision 0009, 0010 rebuilds tables this cluster has already distributed" in said
    assert "nothing was changed" in said
    with db.connect() as su:
        assert su.execute("select version_num from alembic_version").fetchall() == [("0007",)]
    upgraded = " ".join(ok(run(["db", "upgrade", "0008"], dsn=db.superuser_dsn)).stderr.split())
    assert "not distributed yet" not in upgraded
    assert "distribution steps pending" in upgraded
    assert "tenantgate db distribute" in upgraded
    ok(run(["db", "distribute"], dsn=db.superuser_dsn))
    assert "nothing to do" in ok(run(["db", "distribute", "--sql"], dsn=db.superuser_dsn)).stdout
    with db.connect() as su:
        placed = dict(su.execute(
            "select logicalrelid::regclass::text, colocationid from pg_dist_partition"
            " where partmethod = 'h'").fetchall())
        delegated = {r[0] for r in su.execute(
            "select p.proname from pg_dist_object o join pg_proc p on p.oid = o.objid"
            " where o.classid = 'pg_proc'::regclass"
            "   and o.distribution_argument_index is not null").fetchall()}
    assert {"tenantgate.oauth_codes", "tenantgate.oauth_refresh_tokens"} <= set(placed)
    assert len(set(placed.values())) == 1  # the new tables joined the one colocation group
    assert {"authz_session_live", "authz_code_create", "authz_refresh_store"} <= delegated
    ok(run(["db", "check", "--lint", "citus_ready"], dsn=db.superuser_dsn))
    session = scale_out.sessions[0]
    assert call(db, session, f"after-upgrade-{uuid.uuid4()}")["status"] == "ok"


def test_a_partitioned_tenant_table_is_distributed_with_its_partitions_and_takes_new_ones(
        scale_out: ScaleOut) -> None:
    db = scale_out.db
    assert scale_out.rows_after["demo.ticket_events"][0] == 2 * len(scale_out.sessions)
    with db.connect() as su:
        su.execute("create table demo.ticket_events_2027_01 partition of demo.ticket_events"
                   " for values from ('2027-01-01') to ('2027-02-01')")
        t = scale_out.sessions[0].tenant
        su.execute("insert into demo.ticket_events values (%s, %s, 99, '2027-01-15', 'later')",
                   (t.org_id, t.customer_id))
        su.commit()
        placed = dict(su.execute(
            "select logicalrelid::regclass::text, colocationid from pg_dist_partition"
            " where partmethod = 'h' and logicalrelid::regclass::text like %s",
            ("demo.ticket_events%",)).fetchall())
        tickets = su.execute("select colocationid from pg_dist_partition"
                             " where logicalrelid = 'demo.tickets'::regclass").fetchone()
        rows = su.execute("select count(*) from demo.ticket_events where org_id = %s",
                          (t.org_id,)).fetchone()
    assert set(placed) == {"demo.ticket_events", "demo.ticket_events_2026_11",
                           "demo.ticket_events_2026_12", "demo.ticket_events_2027_01"}
    assert tickets is not None
    assert set(placed.values()) == {tickets[0]}  # colocated with the org's other rows
    assert rows == (3,)
