"""Scale: what forced RLS, the session check and the audit chain cost as the data grows.

1. **RLS read vs hand-written WHERE** on ``demo.tickets`` with 1M rows across 1,000 customers
   (smoke: 10k rows, 100 customers). The same "20 newest tickets" read three ways, interleaved,
   each in one pipelined transaction: as a superuser with ``where org_id = .. and customer_id =
   ..`` (no RLS, the baseline); as ``tenantgate_tool`` (the role the gate's tool functions run
   as) with only the policy (the gate's context set, no WHERE); and as the tool functions do it,
   policy *and* WHERE. Read the p50 ratio to the baseline: what the policy costs per read.
2. **Session-check latency at 1k, 100k and 1M customer accounts** (one live session each, 100
   orgs; smoke: 1k and 10k). ``tenantgate.list_tools`` (tools/list: verify the session, read
   its catalog) for random sessions, one at a time, as the mediator. It should be flat: read the
   ratio of the largest to the smallest p50.
3. **Audit appends per second at 1, 8 and 32 writers** through ``tenantgate.append_audit`` (one
   verified transaction per append, as its owner: the mediator may not call it; the gate
   appends the same way inside ``call_tool``), all on one org's hash chain, then 32 writers on
   32 chains, and a plain INSERT into an unchained table at 32 writers as the baseline. Every
   chain is then verified with ``audit_verify``; the script exits non-zero if one is broken.
"""

from __future__ import annotations

import random
import sys
import time

import psycopg

from bench import _world
from bench._common import (
    Deadline,
    Result,
    arg_parser,
    bench_server,
    create_database,
    print_result,
    run_threads,
    summary_ms,
)
from tenantgate.cli import pgserver

SET_CONTEXT = (
    "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true),"
    " set_config('app.session_secret', %s, true)"
)
COLUMNS = "ticket_id, subject, status, priority, created_at, updated_at"
READ_WHERE = (
    f"select {COLUMNS} from demo.tickets where org_id = %s and customer_id = %s"
    " order by ticket_id desc limit 20"
)
READ_RLS = f"select {COLUMNS} from demo.tickets order by ticket_id desc limit 20"
LIST_TOOLS = "select tenantgate.list_tools(%s, %s, %s)"
TOOL_ROLE = ("set local role tenantgate_tool", ())
APPEND = "select seq from tenantgate.append_audit(%s, 'bench', 'allowed', %s::jsonb)"
DETAIL = '{"args_sha256": "00000000000000000000000000000000", "rows": 20}'

Conn = psycopg.Connection[tuple[object, ...]]


def _timed(conn: Conn, steps: list[tuple[str, tuple[object, ...]]]) -> tuple[float, int]:
    """Run `steps` in one pipelined transaction; (seconds, rows of the last statement)."""
    t0 = time.perf_counter()
    with conn.pipeline():
        conn.execute("begin")
        cur = None
        for query, params in steps:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
        conn.execute("commit")
    assert cur is not None
    rows = len(cur.fetchall())
    return time.perf_counter() - t0, rows


def rls_vs_where(server: pgserver.RunningServer, smoke: bool) -> Result:
    orgs, per_org, tickets = (2, 50, 100) if smoke else (10, 100, 1000)
    reads = 300 if smoke else 3000
    db = create_database(server, "scale_rls")
    with psycopg.connect(db.superuser_dsn, autocommit=True) as conn:
        _world.add_orgs(conn, orgs)
        with conn.transaction():
            _world.add_customers(conn, per_org, tickets_each=tickets)
        conn.execute("vacuum analyze demo.tickets")
        tenants = _world.sample_tenants(conn, 200)
        total = conn.execute("select count(*) from demo.tickets").fetchone()
    n_rows = int(total[0]) if total else 0
    rng = random.Random(11)
    times: dict[str, list[float]] = {
        "WHERE, no RLS (superuser)": [],
        "RLS only (tool role)": [],
        "RLS + WHERE (tool role, as the tool functions read)": [],
    }
    with (
        psycopg.connect(db.superuser_dsn, autocommit=True) as su,
        psycopg.connect(db.superuser_dsn, autocommit=True) as med,
    ):
        variants = list(times)
        for i in range(reads + 50):
            t = rng.choice(tenants)
            ctx = (SET_CONTEXT, (t.org_id, t.customer_id, t.secret))
            plans = {
                variants[0]: (su, [(READ_WHERE, (t.org_id, t.customer_id))]),
                variants[1]: (med, [TOOL_ROLE, ctx, (READ_RLS, ())]),
                variants[2]: (med, [TOOL_ROLE, ctx, (READ_WHERE, (t.org_id, t.customer_id))]),
            }
            rng.shuffle(variants)
            for v in variants:
                conn, steps = plans[v]
                seconds, rows = _timed(conn, steps)
                if rows != min(20, tickets):
                    raise AssertionError(f"{v} read {rows} rows, expected {min(20, tickets)}")
                if i >= 50:  # warm-up
                    times[v].append(seconds)
        with med.transaction():
            med.execute("set local role tenantgate_tool")
            plan = med.execute("explain (costs off) " + READ_RLS).fetchall()
    base = summary_ms(times["WHERE, no RLS (superuser)"])
    result = Result(
        "scale_rls",
        f"RLS read vs hand-written WHERE: {n_rows:,} tickets, "
        f"{orgs * per_org:,} customers, {reads} reads each",
        smoke=smoke,
    )
    for v, ts in times.items():
        s = summary_ms(ts)
        result.rows.append({"read": v, **s, "p50_vs_where": round(s["p50_ms"] / base["p50_ms"], 2)})
        if v != "WHERE, no RLS (superuser)":
            result.ratios[f"{v} / WHERE (p50)"] = s["p50_ms"] / base["p50_ms"]
    result.notes.append(
        "each read is one pipelined transaction (begin, [set context], select, "
        "commit); the RLS variants include setting and verifying the context"
    )
    result.notes.append("plan of the RLS-only read: " + " / ".join(str(r[0]).strip() for r in plan))
    return result


def trust_check_scale(server: pgserver.RunningServer, smoke: bool) -> Result:
    steps = (1_000, 10_000) if smoke else (1_000, 100_000, 1_000_000)
    orgs = 100
    calls = 300 if smoke else 2000
    db = create_database(server, "scale_trust")
    result = Result(
        "scale_trust",
        f"Session-check latency (tenantgate.list_tools) by number of customer accounts "
        f"({orgs} orgs, one live session per customer, {calls} checks each)",
        smoke=smoke,
    )
    p50s: dict[int, float] = {}
    with (
        psycopg.connect(db.superuser_dsn, autocommit=True) as su,
        psycopg.connect(db.mediator_dsn, autocommit=True) as med,
    ):
        _world.add_orgs(su, orgs)
        have = 0
        for target in steps:
            t0 = time.perf_counter()
            with su.transaction():
                _world.add_customers(su, (target - have) // orgs)
            have = target
            su.execute("analyze tenantgate.customer_accounts")
            su.execute("analyze tenantgate.sessions")
            seed_s = time.perf_counter() - t0
            tenants = _world.sample_tenants(su, 500, seed=target % 997)
            rng = random.Random(target)
            lat: list[float] = []
            for i in range(calls + 50):
                t = rng.choice(tenants)
                t1 = time.perf_counter()
                row = med.execute(LIST_TOOLS, (t.org_id, t.customer_id, t.secret)).fetchone()
                if i >= 50:
                    lat.append(time.perf_counter() - t1)
                tools = row[0] if row else []
                if len(tools) != 6:  # the six read tools the sessions' read scopes reach
                    raise AssertionError(f"list_tools returned {len(tools)} tools, expected 6")
            s = summary_ms(lat)
            p50s[target] = s["p50_ms"]
            result.rows.append(
                {"customer_accounts": f"{target:,}", **s, "seed_seconds": round(seed_s, 1)}
            )
    result.ratios[f"p50 at {steps[-1]:,} / p50 at {steps[0]:,} customers"] = (
        p50s[steps[-1]] / p50s[steps[0]]
    )
    return result


def audit_appends(server: pgserver.RunningServer, smoke: bool) -> Result:
    seconds = 1.0 if smoke else 5.0
    db = create_database(server, "scale_audit")
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        _world.add_orgs(su, 32)
        with su.transaction():
            _world.add_customers(su, 1)
        tenants = _world.sample_tenants(su, 32)
        su.execute("create schema bench")
        su.execute(
            "create table bench.plain_log (id bigint generated always as identity primary"
            " key, at timestamptz not null default clock_timestamp(), request_id text,"
            " detail jsonb)"
        )
    result = Result(
        "scale_audit",
        f"Audit appends per second ({seconds:g} s per row, one verified transaction per append)",
        smoke=smoke,
    )
    rates: dict[str, float] = {}

    def chained(spread: bool) -> object:
        def work(conn: Conn, worker: int, n: int) -> None:
            t = tenants[worker] if spread else tenants[0]
            with conn.pipeline():
                conn.execute("begin")
                conn.execute(SET_CONTEXT, (t.org_id, t.customer_id, t.secret))
                conn.execute(APPEND, (f"w{worker}-{n}", DETAIL))
                conn.execute("commit")

        return work

    def plain(conn: Conn, worker: int, n: int) -> None:
        conn.execute(
            "insert into bench.plain_log (request_id, detail) values (%s, %s::jsonb)",
            (f"w{worker}-{n}", DETAIL),
        )

    cases = [
        ("1 chain", 1, chained(False)),
        ("1 chain", 8, chained(False)),
        ("1 chain", 32, chained(False)),
        ("32 chains (one per org)", 32, chained(True)),
        ("plain INSERT, no chain (baseline)", 32, plain),
    ]
    for label, writers, work in cases:
        calls, elapsed, lat = run_threads(db.superuser_dsn, writers, seconds, work)  # type: ignore[arg-type]
        rate = calls / elapsed
        rates[f"{label}@{writers}"] = rate
        result.rows.append(
            {
                "log": label,
                "writers": writers,
                "appends": calls,
                "appends_per_s": round(rate),
                **summary_ms(lat),
            }
        )
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        broken = su.execute(
            "select org_id, first_broken_seq, problem from tenantgate.audit_verify()"
            " where first_broken_seq is not null"
        ).fetchall()
        checked = su.execute(
            "select coalesce(sum(rows_checked), 0) from tenantgate.audit_verify()"
        ).fetchone()
    if broken:
        result.notes.append(f"FAILED: broken chains {broken}")
    else:
        result.notes.append(f"every chain verified intact ({checked[0] if checked else 0} rows)")
    result.ratios["1 chain: 32 writers / 1 writer"] = rates["1 chain@32"] / rates["1 chain@1"]
    result.ratios["1 chain @32 / plain INSERT @32"] = (
        rates["1 chain@32"] / rates["plain INSERT, no chain (baseline)@32"]
    )
    result.ratios["32 chains @32 / plain INSERT @32"] = (
        rates["32 chains (one per org)@32"] / rates["plain INSERT, no chain (baseline)@32"]
    )
    return result


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    budget = Deadline(120 if smoke else 1800)
    out = [audit_appends(server, smoke), rls_vs_where(server, smoke)]
    if not budget.over():
        out.append(trust_check_scale(server, smoke))
    return out


def main() -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--only", choices=["rls", "trust", "audit"])
    args = parser.parse_args()
    with bench_server(args.dsn) as server:
        if args.only:
            fn = {"rls": rls_vs_where, "trust": trust_check_scale, "audit": audit_appends}[
                args.only
            ]
            results = [fn(server, args.smoke)]
        else:
            results = run(server, args.smoke)
    for r in results:
        print_result(r)
    if args.json:
        args.json.write_text("[" + ",".join(r.to_json() for r in results) + "]")
    return 1 if any(n.startswith("FAILED") for r in results for n in r.notes) else 0


if __name__ == "__main__":
    sys.exit(main())
