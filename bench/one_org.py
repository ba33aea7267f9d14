"""One org as fast as many: 32 concurrent callers of ONE org vs the same callers over 32 orgs.

Every caller is a psycopg connection of the mediator role calling
``select tenantgate.call_tool(org, customer, secret, null, 'list_tickets', '{"limit": 20}')`` in
autocommit: one statement, one transaction per call, with its rate limit, credit charge and audit
row. In the one-org run the 32 callers are 32 customers' live sessions of one org and one operator
(one rate limit, one credit balance, one audit chain); in the spread run each caller has an org
of its own. The two runs alternate (one org, 32 orgs, one org, 32 orgs) and the calls/s of each
pair are added up, so the load of a shared machine falls on both alike.

While the one-org run goes on, the waits of the mediator's backends are sampled from
pg_stat_activity and pg_locks: the relation a call queues behind is what limits it.

Then the promises, checked on the database: for every org, the granted credits equal the balance
plus every charged spend (no overspend, nothing lost), every successful call has its charge and
its ``allowed`` audit row, and ``tenantgate.audit_verify`` finds every chain unbroken. Last, the
one org's balance is set to a small number and its 32 callers call until refused: exactly that
many calls succeed and the balance ends at 0.

Goal (issue 13): one org >= 0.8 x the calls/s of 32 orgs, zero overspend, unbroken chains.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
from typing import Any

import psycopg

from bench import _world
from bench._common import BenchDatabase, Result, create_database, run_script, run_threads
from tenantgate.cli import pgserver

CALL = "select tenantgate.call_tool(%s, %s, %s, null, 'list_tickets', '{\"limit\": 20}')"
CALLERS = 32
GRANT = 1_000_000_000
# What each active mediator backend waits on, and the relation of the row it queues for: a
# backend first in line for a row holds that row's tuple lock while it waits for the holder's
# transaction; the others wait for the tuple lock itself.
WAITS = (
    "select a.wait_event_type, a.wait_event,"
    " coalesce((select l.relation::regclass::text from pg_locks l"
    "   where l.pid = a.pid and l.locktype = 'tuple' order by l.granted limit 1), '')"
    " from pg_stat_activity a"
    " where a.usename = 'tenantgate_mediator' and a.state = 'active'"
    " and a.pid <> pg_backend_pid()"
)

Conn = psycopg.Connection[tuple[Any, ...]]


class _Refused(Exception):
    """The org's credits are spent: the callers stop."""


def _world_of(su: Conn) -> tuple[list[_world.Tenant], list[_world.Tenant]]:
    """Org 1 with 32 customers (one operator), then 32 orgs with one customer each."""
    _world.add_orgs(su, 1, credits=GRANT)
    with su.transaction():
        _world.add_customers(su, CALLERS, tickets_each=5)
    one_org = _world.sample_tenants(su, CALLERS)
    _world.add_orgs(su, CALLERS, credits=GRANT)
    with su.transaction():
        _world.add_customers(su, 1, tickets_each=5)
    spread: dict[str, _world.Tenant] = {}
    for t in _world.sample_tenants(su, 10_000):
        if t.org_id != one_org[0].org_id:
            spread.setdefault(t.org_id, t)
    return one_org, list(spread.values())[:CALLERS]


def _caller(tenants: list[_world.Tenant], statuses: collections.Counter[str]) -> Any:
    lock = threading.Lock()

    def work(conn: Conn, i: int, n: int) -> None:
        t = tenants[i % len(tenants)]
        row = conn.execute(CALL, (t.org_id, t.customer_id, t.secret)).fetchone()
        status = str(row[0]["status"]) if row else "none"
        with lock:
            statuses[status] += 1

    return work


class WaitSampler:
    """Counts what the mediator's active backends wait on, every 10 ms, until stopped."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.wait(0.01):
                self.samples += 1
                for kind, event, target in conn.execute(WAITS).fetchall():
                    what = f"{kind}:{event}" if kind else "on CPU"
                    self.counts[f"{what} {target}".strip()] += 1


def _check_books(su: Conn, orgs: list[str], ok_calls: int) -> list[str]:
    """Granted = balance + charged for every org; one charge and one allowed row per ok call."""
    problems: list[str] = []
    charged_total = allowed_total = 0
    for org in orgs:
        # Appends that found the chain head busy wait in audit_pending; seal them (what the
        # `tenantgate audit seal --follow` service does) so the chain holds every call.
        su.execute("select tenantgate.audit_seal(%s)", (org,))
        balance, charged, allowed = su.execute(
            "select (select balance from tenantgate.credit_accounts where org_id = %(o)s),"
            " (select coalesce(sum(amount), 0) from tenantgate.credit_ledger"
            "   where org_id = %(o)s and kind = 'spend' and outcome = 'charged'),"
            " (select count(*) from tenantgate.audit_log"
            "   where org_id = %(o)s and decision = 'allowed')",
            {"o": org},
        ).fetchone() or (None, None, None)
        if balance is None or balance < 0 or balance + charged != GRANT:
            problems.append(f"org {org}: balance {balance} + charged {charged} != {GRANT}")
        charged_total += int(charged or 0)
        allowed_total += int(allowed or 0)
        broken = su.execute(
            "select first_broken_seq, problem from tenantgate.audit_verify(%s)"
            " where first_broken_seq is not null",
            (org,),
        ).fetchall()
        if broken:
            problems.append(f"org {org}: audit chain broken at {broken[0]}")
    if not charged_total == allowed_total == ok_calls:
        problems.append(
            f"{ok_calls} ok calls, {charged_total} charged, {allowed_total} allowed rows"
        )
    return problems


def _exhaust(db: BenchDatabase, su: Conn, tenants: list[_world.Tenant], credits: int) -> list[str]:
    """Set the org's balance to `credits`; its callers call until refused: exactly `credits` ok."""
    org = tenants[0].org_id
    su.execute(
        "update tenantgate.credit_accounts set balance = %s where org_id = %s", (credits, org)
    )
    statuses: collections.Counter[str] = collections.Counter()
    work = _caller(tenants, statuses)

    def until_refused(conn: Conn, i: int, n: int) -> None:
        work(conn, i, n)
        if statuses["no_credit"] >= CALLERS * 3:
            raise _Refused  # every caller stops at its next call

    with contextlib.suppress(_Refused):
        run_threads(db.mediator_dsn, CALLERS, 120, until_refused)
    row = su.execute(
        "select balance from tenantgate.credit_accounts where org_id = %s", (org,)
    ).fetchone()
    final = int(row[0]) if row else -1
    if statuses["ok"] != credits or final != 0 or set(statuses) - {"ok", "no_credit"}:
        return [f"exhaustion: {dict(statuses)} with {credits} credits, final balance {final}"]
    return []


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    seconds, pairs, credits = (1.5, 1, 100) if smoke else (8.0, 2, 2000)
    db = create_database(server, "oneorg")
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        one_org, spread = _world_of(su)
    statuses: collections.Counter[str] = collections.Counter()
    rates: dict[str, list[float]] = {"1 org": [], f"{CALLERS} orgs": []}
    latencies: dict[str, list[float]] = {"1 org": [], f"{CALLERS} orgs": []}
    waits: collections.Counter[str] = collections.Counter()
    for tenants in (one_org, spread):  # warm up: plans cached, rate-limit slots made
        run_threads(db.mediator_dsn, CALLERS, 0.5, _caller(tenants, statuses))
    for _ in range(pairs):
        with WaitSampler(db.superuser_dsn) as sampler:
            calls, elapsed, lat = run_threads(
                db.mediator_dsn, CALLERS, seconds, _caller(one_org, statuses)
            )
        waits.update(sampler.counts)
        rates["1 org"].append(calls / elapsed)
        latencies["1 org"].extend(lat)
        calls, elapsed, lat = run_threads(
            db.mediator_dsn, CALLERS, seconds, _caller(spread, statuses)
        )
        rates[f"{CALLERS} orgs"].append(calls / elapsed)
        latencies[f"{CALLERS} orgs"].extend(lat)
    result = Result(
        "one_org",
        f"One org vs {CALLERS} orgs: {CALLERS} concurrent callers of call_tool (list_tickets)",
        smoke=smoke,
    )
    for label in rates:
        ms = sorted(x * 1000 for x in latencies[label])
        result.rows.append(
            {
                "callers": f"{CALLERS} on {label}",
                "calls_per_s": round(sum(rates[label]) / len(rates[label])),
                "p50_ms": round(ms[len(ms) // 2], 2) if ms else 0.0,
                "p99_ms": round(ms[int(len(ms) * 0.99)], 2) if ms else 0.0,
            }
        )
    ratio = sum(rates["1 org"]) / sum(rates[f"{CALLERS} orgs"])
    result.ratios[f"1 org / {CALLERS} orgs calls/s (goal >= 0.8)"] = ratio
    total = sum(waits.values()) or 1
    result.notes.append(
        "one org's callers, sampled every 10 ms: "
        + ", ".join(f"{what} {100 * n / total:.0f}%" for what, n in waits.most_common(5))
    )
    problems: list[str] = []
    if set(statuses) != {"ok"}:
        problems.append(f"calls answered {dict(statuses)}, not all ok")
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        orgs = [one_org[0].org_id, *(t.org_id for t in spread)]
        problems += _check_books(su, orgs, statuses["ok"])
        problems += _exhaust(db, su, one_org, credits)
    if problems:
        result.notes.append("FAILED: " + "; ".join(problems))
    else:
        result.notes.append(
            f"zero overspend: for all {len(orgs)} orgs granted = balance + charged, one charge "
            f"and one allowed audit row per ok call, every chain verified; {CALLERS} callers "
            f"against a balance of {credits}: exactly {credits} ok, balance 0"
        )
    result.notes.append(
        f"goal 1 org >= 0.8 x {CALLERS} orgs: {'met' if ratio >= 0.8 else 'NOT met'}"
        f" ({ratio:.2f}); alternating runs of {seconds} s, {pairs} pair(s)"
    )
    return [result]


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
