"""Where an enforced call spends its database time: the gate's statements timed on their own.

Each tools/call is one statement of ``tenantgate.call_tool`` (session, catalog, arguments, rate
limit, charge, the tool's function under RLS, shaping, audit) and each tools/list one of
``tenantgate.list_tools``; both run on a mediator connection for tenants spread over 32 orgs,
one transaction per iteration, one round trip each. ``select 1`` gives the round-trip floor;
``minus_floor_ms`` is what the statement itself costs. Read it next to the gate overhead and the
``postgres_cpu_ms`` column of the end-to-end benchmark.
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
from tenantgate.cli import pgserver

Params = Callable[[_world.Tenant, int], tuple[object, ...]]
STATEMENTS: list[tuple[str, str, Params]] = [
    ("select 1 (round-trip floor)", "select 1", lambda t, i: ()),
    (
        "tenantgate.list_tools (tools/list)",
        "select tenantgate.list_tools(%s, %s, %s)",
        lambda t, i: (t.org_id, t.customer_id, t.secret),
    ),
    (
        "tenantgate.call_tool list_tickets (tools/call, 20 rows)",
        "select tenantgate.call_tool(%s, %s, %s, null, 'list_tickets', '{\"limit\": 20}')",
        lambda t, i: (t.org_id, t.customer_id, t.secret),
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
                conn.execute(query, params(t, -1)).fetchall()  # type: ignore[arg-type]
                conn.commit()
                usable.append((label, query, params))
            except psycopg.Error as exc:
                conn.rollback()
                result.notes.append(f"{label} skipped: {type(exc).__name__}")
        times = {label: [] for label, _, _ in usable} | {"commit": []}
        for i in range(iterations + 100):
            t = tenants[i % len(tenants)]
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
