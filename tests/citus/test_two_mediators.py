"""Two stateless mediator processes behind one PgBouncer (transaction mode) on the cluster.

Credits, rate limits, request ids and sessions are held by the database, so two processes that
interleave calls for the same session get exact totals, as one process would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from tenantgate.mediator.approvals import Approvals
from tests.citus.cluster import DATABASE, Cluster
from tests.factories import Session, add_operator, add_tenant, open_session, seed_demo_rows
from tests.pg import REPO, ROLE_PASSWORDS, TestDatabase
from tests.reliability._pgbouncer import Bouncer, binary, pgbouncer


@pytest.fixture(scope="module")
def bouncer(cluster: Cluster) -> Iterator[Bouncer]:
    if binary() is None:
        pytest.skip("pgbouncer is not installed (Debian package pgbouncer)")
    with pgbouncer(cluster.coordinator, ROLE_PASSWORDS, pool_size=4) as running:
        yield running


def two_mediators(bouncer: Bouncer, session: Session, ids: tuple[list[str], ...],
                  tool: str = "list_tickets", arguments: dict[str, object] | None = None
                  ) -> Counter[str]:
    """Run one caller process per entry of `ids`, all at once, each calling `tool` with
    `arguments` once per request id; their outcomes summed."""
    dsn = bouncer.dsn(DATABASE, "tenantgate_mediator", ROLE_PASSWORDS["tenantgate_mediator"])
    procs = []
    for request_ids in ids:
        config = {"dsn": dsn, "org": str(session.tenant.org_id),
                  "customer": str(session.tenant.customer_id), "secret": session.secret,
                  "request_keys": request_ids, "tool": tool, "arguments": arguments or {}}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.citus._mediator_process", json.dumps(config)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    total: Counter[str] = Counter()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        total.update(json.loads(out))
    return total


def unlimited(db: TestDatabase, session: Session) -> Session:
    """Lift the catalog's rate limit for the session's tools (where the test is about credits)."""
    with db.connect() as su:
        su.execute("update tenantgate.tools set rate_burst = 1000000, rate_per_second = 1000000"
                   " where org_id = %s", (session.tenant.org_id,))
    return session


def charged(db: TestDatabase, session: Session) -> tuple[int, int]:
    with db.connect() as su:
        row = su.execute(
            "select (select balance from tenantgate.credit_accounts where org_id = %(o)s),"
            " (select count(*) from tenantgate.credit_ledger where org_id = %(o)s"
            "   and kind = 'spend' and outcome = 'charged')", {"o": session.tenant.org_id}
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_two_mediators_spend_exactly_the_balance_between_them(cluster: Cluster,
                                                              bouncer: Bouncer) -> None:
    db = cluster.database
    session = unlimited(db, open_session(db, add_tenant(db, credits=100)))
    outcomes = two_mediators(bouncer, session, ([f"a{i}" for i in range(80)],
                                                [f"b{i}" for i in range(80)]))
    assert outcomes == Counter(ok=100, no_credit=60)
    assert charged(db, session) == (0, 100)


def test_a_request_key_sent_by_both_mediators_never_gives_data_without_a_charge(
        cluster: Cluster, bouncer: Bouncer) -> None:
    db = cluster.database
    session = unlimited(db, open_session(db, add_tenant(db, credits=100)))
    shared = [f"shared-{i}" for i in range(30)]
    outcomes = two_mediators(bouncer, session, (shared, list(reversed(shared))))
    assert outcomes["ok"] + outcomes["replayed"] == 60
    balance, spends = charged(db, session)
    assert spends == outcomes["ok"]  # every fresh answer charged; a replay is the saved answer
    assert balance == 100 - spends


def test_a_rate_limit_holds_across_both_mediators(cluster: Cluster, bouncer: Bouncer) -> None:
    db = cluster.database
    session = open_session(db, add_tenant(db, credits=1000))
    with db.connect() as su:  # the catalog's limit for this org's tool: 25, then nothing more
        su.execute("update tenantgate.tools set rate_burst = 25, rate_per_second = 0.0001"
                   " where org_id = %s and tool_name = 'list_tickets'", (session.tenant.org_id,))
    outcomes = two_mediators(bouncer, session, ([f"a{i}" for i in range(40)],
                                                [f"b{i}" for i in range(40)]))
    assert outcomes == Counter(ok=25, rate_limited=55)


def test_a_session_ended_once_is_ended_for_both_mediators(cluster: Cluster,
                                                          bouncer: Bouncer) -> None:
    db = cluster.database
    session = open_session(db, add_tenant(db, credits=100))
    before = two_mediators(bouncer, session, (["a0", "a1"], ["b0", "b1"]))
    assert before == Counter(ok=4)
    with psycopg.connect(db.session_manager_dsn, autocommit=True) as conn:
        row = conn.execute("select tenantgate.end_session(%s, %s)",
                           (session.tenant.org_id, session.session_id)).fetchone()
    assert row == (True,)
    after = two_mediators(bouncer, session, (["a2", "a3"], ["b2", "b3"]))
    assert after == Counter(not_found=4)
    assert charged(db, session) == (96, 4)


def test_an_approval_asked_through_one_mediator_runs_once_through_the_other(
        cluster: Cluster, bouncer: Bouncer) -> None:
    db = cluster.database
    tenant = add_tenant(db, credits=100)
    session = open_session(db, tenant, scopes=("read:tickets", "write:tickets"))
    seed_demo_rows(db, tenant, tickets=1)
    approver = add_operator(db, tenant.org_id)  # four eyes: not the operator of the session
    with db.connect() as su:
        row = su.execute("select ticket_id from demo.tickets where org_id = %s",
                         (tenant.org_id,)).fetchone()
    assert row is not None
    close = {"ticket_id": row[0], "status": "closed"}
    admin = bouncer.dsn(DATABASE, "tenantgate_admin", ROLE_PASSWORDS["tenantgate_admin"])

    asked = two_mediators(bouncer, session, (["ask"],), "update_ticket_status", close)
    with db.connect() as su:
        pending = su.execute("select approval_id from tenantgate.approvals where org_id = %s"
                             " and status = 'pending'", (tenant.org_id,)).fetchall()
    assert len(pending) == 1
    Approvals(admin).approve(str(tenant.org_id), str(pending[0][0]), str(approver))
    used = two_mediators(bouncer, session, ([], ["use"]), "update_ticket_status", close)
    again = two_mediators(bouncer, session, ([f"a{i}" for i in range(5)],
                                             [f"b{i}" for i in range(5)]),
                          "update_ticket_status", close)

    assert asked == Counter(approval_required=1)
    assert used == Counter(ok=1)
    assert again == Counter(approval_required=10)  # used once: each later call asks anew
    with db.connect() as su:
        org = tenant.org_id
        assert su.execute("select status from tenantgate.approvals where org_id = %s"
                          " and approval_id = %s", (org, pending[0][0])).fetchone() == ("used",)
        assert su.execute("select count(*) from tenantgate.approvals where org_id = %s"
                          " and status = 'approved'", (org,)).fetchone() == (0,)
        assert su.execute("select status from demo.tickets where org_id = %s",
                          (org,)).fetchone() == ("closed",)
        assert su.execute("select count(*) from tenantgate.audit_log where org_id = %s"
                          " and decision = 'allowed'", (org,)).fetchone() == (1,)
    assert charged(db, session) == (98, 1)  # the tool costs 2, charged once
