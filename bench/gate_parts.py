"""What each part of an enforced call costs in PostgreSQL, statement by statement.

``tenantgate.call_tool`` runs the gate as one statement; inside it, PL/pgSQL runs a few dozen
statements of its own. pg_stat_statements with ``track = all`` times every one of them, nested
ones included, so one run of many identical calls (the demo ``list_tickets`` read, 20 rows, one
autocommit statement each, as the mediator sends it) says where the call's time goes and what
each part buys.

pg_stat_statements must be preloaded, so this benchmark starts its own embedded PostgreSQL with
it (with ``--dsn``, it uses that server if pg_stat_statements is loaded there, else says so).
Times are the server's own timing of each statement (wall time on one connection, so close to its
CPU), with instrumentation on: read the shares more than the microseconds. A statement's time
includes the statements it runs (the shaping query includes the tool's function, which includes
the tool's own SELECT).
"""

from __future__ import annotations

import re
import sys
from typing import Any

import psycopg

from bench import _world
from bench._common import SERVER_CONFIG, Result, create_database, run_script
from tenantgate.cli import pgserver

CALL = "select tenantgate.call_tool(%s, %s, %s, null, 'list_tickets', '{\"limit\": 20}')"
PRELOAD = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.track_planning": "off",
}
# What a statement of the gate is for, by a fragment of its text (first match wins), and its
# depth: 0 the call, 1 run by call_tool itself (or by a helper it calls inside an expression,
# rate_try, credit_take, tool_arguments), 2 nested inside a statement of depth 1.
PARTS = (
    ("tenantgate.call_tool(", "the whole call (one statement, its own transaction)", 0),
    ("audit_append_row(", "the hash-chained audit row (append, chain or queue for the seal)", 1),
    ("jsonb_agg(x.r order by x.n)", "run the tool and shape its rows (withheld columns, caps)", 1),
    ("from tenantgate_tools.", "the tool's function, as the role that owns nothing", 2),
    ("with tenantgate_rows as", "the tool's own SELECT, under the table's forced RLS", 2),
    ("insert into tenantgate.credit_ledger", "the charge's ledger row", 1),
    (
        "tenantgate.live_sessions",
        "the session (secret's hash, live, every party active) and "
        "the tool in its catalog and scope",
        1,
    ),
    ("tenantgate.rate_buckets", "the operator's rate bucket", 1),
    ("tenantgate.credit_slots", "the credit charge (one of the org's slots)", 1),
    ("insert into tenantgate.audit_log", "the audit row itself", 2),
    ("insert into tenantgate.audit_pending", "the audit row, queued for the seal", 2),
    ("update tenantgate.audit_heads", "the chain's head moves", 2),
    ("'at_us'", "the audit row's canonical text, to hash", 2),
    ("'loc'", "the arguments against the declared parameters", 1),
    ("jsonb_array_elements(p_parameters)", "the declared parameters, one by one", 1),
    ("audit_heads", "the chain's head, read", 2),
    ("set_config('app.org_id'", "the call's context, transaction-local", 1),
    ("tenantgate.audit_pending", "rows waiting for the seal, checked", 2),
    ('from only "tenantgate"."orgs"', "foreign-key check of the ledger row's org", 2),
)
# pg_stat_statements times a statement's run (ExecutorRun and ExecutorFinish), not its start-up
# and shut-down (plan-cache checks, locks, ExecInitNode), nor the PL/pgSQL around it.
OWN = (
    "around and between the statements: each one's executor start-up and shut-down, plan-cache "
    "checks and locks (not in pg_stat_statements' timing), PL/pgSQL expressions, helper calls, "
    "the charge's subtransaction, building the answer"
)


def part_of(query: str) -> tuple[str, int]:
    """(what the statement is for, its depth); ("", 2) for one not listed."""
    low = query.lower()
    return next(
        ((what, depth) for fragment, what, depth in PARTS if fragment.lower() in low), ("", 2)
    )


def _preloaded(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select current_setting('shared_preload_libraries')").fetchone()
    return bool(row and "pg_stat_statements" in str(row[0]))


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    calls = 300 if smoke else 4000
    result = Result(
        "gate_parts",
        "PostgreSQL time per enforced call, statement by statement (pg_stat_statements)",
        smoke=smoke,
        plot={"kind": "bars", "label": "part", "value": "us_per_call", "unit": "µs per call"},
    )
    own = None
    if server.kind == "external":
        if not _preloaded(server.dsn()):
            result.notes.append("not measured: pg_stat_statements is not preloaded on --dsn")
            return [result]
    else:
        own = server = pgserver.start_embedded({**SERVER_CONFIG, **PRELOAD})
    try:
        rows = _measure(server, calls)
    finally:
        if own is not None:
            own.stop()
    whole = next(
        (us for query, _n, us in rows if query.lower().startswith("select tenantgate.call_tool(")),
        0.0,
    )
    direct = 0.0
    for query, per_call, us in rows:
        if per_call < 0.99:  # not on every call: first-call set-up, the seal, maintenance
            continue
        text = re.sub(r"\s+", " ", query).strip()
        what, depth = part_of(text)
        direct += us if depth == 1 else 0.0
        result.rows.append(
            {
                "part": what or text[:60],
                "statements_per_call": round(per_call, 2),
                "us_per_call": round(us, 1),
                "share_of_call_pct": round(100 * us / whole, 1) if whole else 0.0,
                "statement": text[:90],
            }
        )
    if whole:
        result.rows.insert(
            1,
            {
                "part": OWN,
                "statements_per_call": 0.0,
                "us_per_call": round(whole - direct, 1),
                "share_of_call_pct": round(100 * (whole - direct) / whole, 1),
                "statement": "(the call minus the statements it runs)",
            },
        )
        result.ratios["enforced call, µs in PostgreSQL (instrumented)"] = whole
        result.ratios["share of the call around and between its statements"] = (
            whole - direct
        ) / whole
    result.notes.append(
        f"{calls} calls of list_tickets (20 rows) on one connection after a warm-up; "
        "pg_stat_statements.track = all; a statement's time includes the statements it runs"
    )
    return [result]


def _measure(server: pgserver.RunningServer, calls: int) -> list[tuple[str, float, float]]:
    """(statement, executions per call, µs per call) of every statement the calls ran."""
    db = create_database(server, "gateparts")
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        su.execute("create extension if not exists pg_stat_statements")
        _world.add_orgs(su, 4, credits=1_000_000_000)
        with su.transaction():
            _world.add_customers(su, 1, tickets_each=20)
        tenant = _world.sample_tenants(su, 1)[0]
    ctx = (tenant.org_id, tenant.customer_id, tenant.secret)
    with psycopg.connect(db.mediator_dsn, autocommit=True, prepare_threshold=0) as med:
        for _ in range(200):
            med.execute(CALL, ctx).fetchall()
        with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
            su.execute("select pg_stat_statements_reset()")
        for _ in range(calls):
            med.execute(CALL, ctx).fetchall()
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        found: list[tuple[Any, ...]] = su.execute(
            "select query, calls::float8 / %s, total_exec_time * 1000 / %s"
            " from pg_stat_statements where dbid = (select oid from pg_database"
            " where datname = current_database()) and query not like %s"
            " order by total_exec_time desc",
            (calls, calls, "%pg_stat_statements%"),
        ).fetchall()
    return [(str(q), float(n), float(us)) for q, n, us in found]


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
