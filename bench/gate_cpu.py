"""PostgreSQL CPU per enforced call vs a bare read, and the policy's context check per query.

CPU is the backend's own, read from /proc/<pid>/schedstat (nanoseconds on CPU; /proc/<pid>/stat
ticks where schedstat is missing) before and after many statements on one connection, so the
client's and the other backends' CPU are not counted. Every variant runs in the same database,
interleaved over several rounds; the median round is reported.

* **bare read**: tools/demo.yaml's ``list_tickets`` statement (20 rows) as one autocommit
  statement of a superuser: no RLS, no gate.
* **enforced call**: ``select tenantgate.call_tool(...)`` on a mediator connection, one autocommit
  statement: session, catalog, arguments, rate limit, credit charge, the tool under forced RLS,
  shaping and the audit row.
* **round trip**: ``select 1``, the protocol's own cost on the backend.
* **context check**: the same statement run many times inside one transaction, as the tool role
  under the enrolled table's policy with the gate's settings (``gate_tenant()``, what the gate's
  tool functions read through), and with the verifying policy expression user-written policies
  use (``current_tenant()``: hashes the secret and joins the live session), against the same
  statement as the superuser in a transaction. The difference per query is the check's price.

Goals (issue 13): enforced call <= 0.35 ms of PostgreSQL CPU; context check <= 0.05 ms per query.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import _world
from bench._common import Result, create_database, run_script
from bench._cpu import TICK
from tenantgate.cli import pgserver

STATEMENT = (
    "select ticket_id, subject, status, priority, created_at, updated_at from demo.tickets"
    " where org_id = %(org)s and customer_id = %(cust)s order by ticket_id desc limit 20"
)
VERIFIED = (
    "select ticket_id, subject, status, priority, created_at, updated_at from demo.tickets"
    " where org_id = %(org)s and customer_id = %(cust)s"
    " and (org_id, customer_id) = (select t.org_id, t.customer_id"
    " from tenantgate.current_tenant() t) order by ticket_id desc limit 20"
)
CALL = "select tenantgate.call_tool(%s, %s, %s, null, 'list_tickets', '{\"limit\": 20}')"
SETTINGS = (
    "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true),"
    " set_config('app.session_secret', %s, true)"
)

Conn = psycopg.Connection[tuple[Any, ...]]


def cpu_ns(pid: int) -> int:
    """Nanoseconds the process `pid` has spent on a CPU."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // TICK


def per_statement_ms(conn: Conn, n: int, one: Callable[[], object]) -> float:
    """Backend CPU milliseconds per call of `one` (n calls after a short warm-up)."""
    pid = conn.info.backend_pid
    for _ in range(min(50, n)):
        one()
    before = cpu_ns(pid)
    for _ in range(n):
        one()
    return (cpu_ns(pid) - before) / n / 1e6


def _in_transaction(
    conn: Conn, n: int, setup: list[tuple[str, tuple[Any, ...]]], query: str, params: dict[str, Any]
) -> float:
    with conn.transaction():
        for statement, args in setup:
            conn.execute(statement, args)
        ms = per_statement_ms(conn, n, lambda: conn.execute(query, params).fetchall())
        if not conn.execute(query, params).fetchall():
            raise AssertionError(f"the statement read nothing: {setup!r}")
    return ms


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    rounds, calls, reads = (2, 300, 2000) if smoke else (5, 1500, 10000)
    db = create_database(server, "gatecpu")
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        _world.add_orgs(su, 4, credits=1_000_000_000)
        with su.transaction():
            _world.add_customers(su, 1, tickets_each=20)
        tenant = _world.sample_tenants(su, 1)[0]
    params = {"org": tenant.org_id, "cust": tenant.customer_id}
    ctx = (tenant.org_id, tenant.customer_id, tenant.secret)
    samples: dict[str, list[float]] = {}

    def add(label: str, value: float) -> None:
        samples.setdefault(label, []).append(value)

    with (
        psycopg.connect(db.superuser_dsn, autocommit=True, prepare_threshold=0) as su,
        psycopg.connect(db.mediator_dsn, autocommit=True, prepare_threshold=0) as med,
    ):
        for _ in range(rounds):
            add(
                "round trip (select 1)",
                per_statement_ms(su, reads, lambda: su.execute("select 1").fetchall()),
            )
            add(
                "bare read (superuser, no RLS)",
                per_statement_ms(su, reads, lambda: su.execute(STATEMENT, params).fetchall()),
            )
            add(
                "enforced call_tool",
                per_statement_ms(med, calls, lambda: med.execute(CALL, ctx).fetchall()),
            )
            add("in a transaction: bare read", _in_transaction(su, reads, [], STATEMENT, params))
            add(
                "in a transaction: tool role, gate's policy",
                _in_transaction(
                    su,
                    reads,
                    [("set local role tenantgate_tool", ()), (SETTINGS, ctx)],
                    STATEMENT,
                    params,
                ),
            )
            add(
                "in a transaction: verifying check (current_tenant)",
                _in_transaction(su, reads, [(SETTINGS, ctx)], VERIFIED, params),
            )
    ms = {label: statistics.median(values) for label, values in samples.items()}
    result = Result(
        "gate_cpu",
        "PostgreSQL CPU per enforced call vs a bare read, and the context check per query",
        smoke=smoke,
    )
    for label, value in ms.items():
        result.rows.append(
            {"statement": label, "backend_cpu_ms": round(value, 4), "rounds": len(samples[label])}
        )
    bare, call = ms["bare read (superuser, no RLS)"], ms["enforced call_tool"]
    in_tx = ms["in a transaction: bare read"]
    gate_ctx = ms["in a transaction: tool role, gate's policy"] - in_tx
    verified_ctx = ms["in a transaction: verifying check (current_tenant)"] - in_tx
    result.ratios["enforced call, PostgreSQL CPU ms (goal <= 0.35)"] = call
    result.ratios["enforced / bare read, PostgreSQL CPU"] = call / bare if bare else 0.0
    result.ratios["gate's policy context check, ms per query over bare (goal <= 0.05)"] = gate_ctx
    result.ratios["verifying context check (current_tenant), ms per query over bare"] = verified_ctx
    result.notes.append(
        f"backend CPU from /proc/<pid>/schedstat; median of {rounds} interleaved rounds of "
        f"{calls} calls / {reads} reads; the machine is shared, so read the ratios side by side"
    )
    result.notes.append(
        f"enforced call: {'met' if call <= 0.35 else 'NOT met'} (<= 0.35 ms); gate's context "
        f"check: {'met' if gate_ctx <= 0.05 else 'NOT met'} (<= 0.05 ms per query)"
    )
    return [result]


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
