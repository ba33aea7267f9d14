"""Where an enforced call spends its database time: each per-turn statement timed on its own.

In one verified transaction per iteration (the three settings set first, on a mediator
connection), each statement the gate's work is made of runs alone, one round trip each, for
tenants spread over 32 orgs: the trust check, the rate-limit take, the idempotent credit spend,
the audit append, the ``list_tickets`` read, and the commit. ``select 1`` gives the round-trip
floor; ``minus_floor_ms`` is what the statement itself costs. Read it next to the gate
overhead and the ``postgres_cpu_ms`` column of the end-to-end benchmark: the sum is roughly the
database's share of every call. (The mediator pipelines these into 2 round trips and may fold
some into one function; the per-statement work is the same.)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import psycopg

from bench import _world
from bench._common import (
    Result,
    create_database,
    run_script,
    summary_ms,
)
from cli import pgserver

SET_CONTEXT = (
    "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true),"
    " set_config('app.session_secret', %s, true)"
)
Params = Callable[[_world.Tenant, int], tuple[object, ...]]
STATEMENTS: list[tuple[str, str, Params]] = [
    ("select 1 (round-trip floor)", "select 1", lambda t, i: ()),
    ("set context (3 x set_config)", SET_CONTEXT, lambda t, i: (t.org_id, t.customer_id, t.secret)),
    (
        "trust_check",
        "select * from tenantgate.trust_check(%s, %s, %s, %s)",
        lambda t, i: (t.org_id, t.connector_id, t.customer_id, t.secret),
    ),
    ("rate_take", "select tenantgate.rate_take('list_tickets', 100000, 100000)", lambda t, i: ()),
    (
        "spend_credits",
        "select * from tenantgate.spend_credits(%s, 1, 'list_tickets')",
        lambda t, i: (f"bd-{i}-{time.time_ns()}",),
    ),
    (
        "append_audit",
        "select * from tenantgate.append_audit(%s, 'list_tickets', 'allowed',"
        ' \'{"args_sha256": "00"}\'::jsonb)',
        lambda t, i: (f"bd-{i}",),
    ),
    (
        "list_tickets read (RLS + WHERE)",
        "select ticket_id, subject, status, priority, created_at, updated_at from demo.tickets"
        " where org_id = %s and customer_id = %s order by ticket_id desc limit 21",
        lambda t, i: (t.org_id, t.customer_id),
    ),
]


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    iterations = 200 if smoke else 2000
    db = create_database(server, "breakdown")
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        _world.add_orgs(su, 32, credits=1_000_000_000)
        with su.transaction():
            _world.add_customers(su, 1, tickets_each=3)
        tenants = _world.sample_tenants(su, 32)
    result = Result(
        "db_breakdown",
        f"Database time per gate statement ({iterations} verified transactions, 32 orgs)",
        smoke=smoke,
    )
    usable: list[tuple[str, str, Params]] = []
    times: dict[str, list[float]] = {}
    with psycopg.connect(db.mediator_dsn, prepare_threshold=0) as conn:
        t = tenants[0]
        for label, query, params in STATEMENTS:  # keep what this schema version offers
            try:
                conn.execute(SET_CONTEXT, (t.org_id, t.customer_id, t.secret))
                conn.execute(query, params(t, -1)).fetchall()  # type: ignore[arg-type]
                conn.commit()
                usable.append((label, query, params))
            except psycopg.Error as exc:
                conn.rollback()
                result.notes.append(f"{label} skipped: {type(exc).__name__}")
        times = {label: [] for label, _, _ in usable} | {"commit": []}
        for i in range(iterations + 100):
            t = tenants[i % len(tenants)]
            conn.execute(SET_CONTEXT, (t.org_id, t.customer_id, t.secret))
            for label, query, params in usable:
                t0 = time.perf_counter()
                conn.execute(query, params(t, i)).fetchall()  # type: ignore[arg-type]
                if i >= 100:
                    times[label].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            conn.commit()
            if i >= 100:
                times["commit"].append(time.perf_counter() - t0)
    floor = summary_ms(times["select 1 (round-trip floor)"])["p50_ms"]
    total = 0.0
    for label, ts in times.items():
        s = summary_ms(ts)
        extra = round(max(0.0, s["p50_ms"] - floor), 3)
        if not label.startswith("select 1"):
            total += extra
        result.rows.append({"statement": label, **s, "minus_floor_ms": extra})
    result.ratios["sum of statement costs, p50 ms (round trips excluded)"] = total
    return [result]


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
