"""Audit log at scale: one org as fast as many on the chain, and 0 to 10 million rows.

1. **One chain vs 32 chains, before and after 0010.** 32 writers append through the gate's
   append function (one transaction per append, as ``call_tool`` makes it), all to one org's
   chain, then each to its own org's chain. The design of before 0010 -- lock the org's head row,
   hash, insert, hold the lock until commit -- is rebuilt in schema ``bench_old`` and measured in
   the same run, interleaved, as the baseline. ``tenantgate audit seal`` runs every second
   meanwhile (as deployed); the oldest row still pending is sampled: the tamper-evidence window
   actually seen. Every chain is then sealed and verified.
2. **Appends per second as the log grows**: 8 writers on 8 orgs at checkpoints of 0, 10%, 50% and
   100% of ``--rows`` (default 10,000,000; smoke 20,000). Between checkpoints the log is filled
   server-side with validly chained rows (8 other orgs, spread over the last ten months, so every
   monthly partition holds its share). Read the ratio last / first.
3. **Verify, export, retire** at the full size: ``audit_verify_from`` over every filled chain
   (rows/s, two connections, one chain each at a time), then resumed from the heads anchored at
   the 50% checkpoint (only the rows after);
   ``tenantgate audit export`` of one chain in a child process (rows/s and peak RSS, against a
   small export); ``audit_retire`` of the two oldest months, then the remainder verified from the
   cuts.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/audit_scale.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench import _world
from bench._audit_fill import fill
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
from migrations.sqlfile import function_definition
from tenantgate.cli import pgserver
from tenantgate.cli.audit_seal import seal_pending

Conn = psycopg.Connection[tuple[Any, ...]]
DETAIL = '{"args_sha256": "00000000000000000000000000000000", "rows": 20, "bytes": 900}'
NEW_APPEND = ("select seq from tenantgate.audit_append_row(%s, null, null, null, %s,"
              " 'list_tickets', 'allowed', %s::jsonb)")
OLD_APPEND = ("select seq from bench_old.append_row(%s, null, null, null, %s, 'list_tickets',"
              " 'allowed', %s::jsonb)")
FILL_ORGS = 8
LIVE_ORGS = 8

# The chain append of before 0010, as 0006 shipped it: the head row is the lock. The function is
# sql/88_gate/40_call.sql's own definition, pointed at copies of the 0006 tables with the log's
# check constraints (re-read by every INSERT). A plain function on a table without checks was a
# cheaper baseline than what 0010 replaced: 32 writers on 32 chains appended ~25% faster through
# it than through this faithful copy, measured side by side.
OLD_DESIGN = """
create schema bench_old;
create table bench_old.audit_heads (org_id uuid primary key, seq bigint not null,
                                    head_hash bytea not null);
create table bench_old.audit_log (
  org_id uuid not null, seq bigint not null check (seq > 0), occurred_at timestamptz not null,
  session_id uuid, operator_id uuid, customer_id uuid, request_id text, tool_name text,
  decision text not null check (decision in ('allowed', 'denied', 'error', 'approval_required',
                                             'rate_limited', 'no_credit')),
  detail jsonb not null default '{}',
  prev_hash bytea not null check (pg_catalog.length(prev_hash) = 32),
  row_hash bytea not null check (pg_catalog.length(row_hash) = 32),
  primary key (org_id, seq));
create index on bench_old.audit_log (org_id, occurred_at);
""" + (
    function_definition("88_gate/40_call.sql", "tenantgate.audit_append_row")
    .replace("function tenantgate.audit_append_row(", "function bench_old.append_row(")
    .replace("tenantgate.audit_heads", "bench_old.audit_heads")
    .replace("tenantgate.audit_log", "bench_old.audit_log")
)

OLD_BROKEN = """
select count(*) from (
  select prev_hash <> lag(row_hash, 1, decode(repeat('00', 32), 'hex'))
           over (partition by org_id order by seq)
         or seq <> row_number() over (partition by org_id order by seq) as bad
    from bench_old.audit_log) x where bad
"""


def month_start(months_back: int) -> dt.datetime:
    first = dt.datetime.now(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(months_back):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return first


class Sealer:
    """`tenantgate audit seal --follow` in a thread: seal every `interval`, and sample the age of
    the oldest pending row every 50 ms (the tamper-evidence window seen)."""

    def __init__(self, dsn: str, interval: float = 1.0) -> None:
        self.dsn, self.interval = dsn, interval
        self.stop = threading.Event()
        self.max_age = 0.0
        self.max_pending = 0
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._seal, daemon=True),
                        threading.Thread(target=self._sample, daemon=True)]

    def __enter__(self) -> Sealer:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        if self.errors:
            raise self.errors[0]

    def _seal(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop.wait(self.interval):
                    seal_pending(conn)
        except BaseException as exc:
            self.errors.append(exc)

    def _sample(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop.wait(0.05):
                    row = conn.execute(
                        "select count(*), coalesce(extract(epoch from clock_timestamp()"
                        " - min(occurred_at)), 0) from tenantgate.audit_pending").fetchone()
                    if row:
                        self.max_pending = max(self.max_pending, int(row[0]))
                        self.max_age = max(self.max_age, float(row[1]))
        except BaseException as exc:
            self.errors.append(exc)


def _appender(query: str, orgs: list[str]) -> Callable[[Conn, int, int], None]:
    def work(conn: Conn, worker: int, n: int) -> None:
        conn.execute(query, (orgs[worker % len(orgs)], f"w{worker}-{n}", DETAIL))
    return work


def chain_contention(server: pgserver.RunningServer, smoke: bool) -> Result:
    seconds = 1.0 if smoke else 4.0
    rounds = 1 if smoke else 2
    db = create_database(server, "audit_chains")
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        _world.add_orgs(su, 32)
        orgs = [str(r[0]) for r in su.execute(
            "select org_id from tenantgate.orgs order by org_id").fetchall()]
        su.execute(OLD_DESIGN)
    designs = {"head lock (before 0010, baseline)": OLD_APPEND,
               "append + seal (0010)": NEW_APPEND}
    calls: dict[tuple[str, str], list[tuple[int, float, list[float]]]] = {}
    sealer = Sealer(db.superuser_dsn)
    with sealer:
        for _ in range(rounds):
            for chains, targets in (("1 chain", orgs[:1]), ("32 chains", orgs)):
                for design, query in designs.items():
                    got = run_threads(db.superuser_dsn, 32, seconds, _appender(query, targets))
                    calls.setdefault((design, chains), []).append(got)
    result = Result("audit_chains",
                    f"Audit chain: 32 writers on one org's chain vs on 32 chains ({seconds:g} s x "
                    f"{rounds} per row, interleaved), head lock vs append + seal", smoke=smoke)
    rates: dict[tuple[str, str], float] = {}
    for (design, chains), runs in calls.items():
        n = sum(r[0] for r in runs)
        elapsed = sum(r[1] for r in runs)
        rates[(design, chains)] = n / elapsed
        result.rows.append({"design": design, "chains": chains, "writers": 32, "appends": n,
                            "appends_per_s": round(n / elapsed),
                            **summary_ms([x for r in runs for x in r[2]])})
    for design in designs:
        result.ratios[f"{design}: 1 chain / 32 chains"] = (
            rates[(design, "1 chain")] / rates[(design, "32 chains")])
    result.ratios["1 chain @32: append + seal / head lock"] = (
        rates[("append + seal (0010)", "1 chain")]
        / rates[("head lock (before 0010, baseline)", "1 chain")])
    result.ratios["32 chains @32: append + seal / head lock"] = (
        rates[("append + seal (0010)", "32 chains")]
        / rates[("head lock (before 0010, baseline)", "32 chains")])
    with psycopg.connect(db.superuser_dsn, autocommit=True) as su:
        seal_pending(su)
        broken = su.execute("select count(*) from tenantgate.audit_verify()"
                            " where first_broken_seq is not null").fetchone()
        checked = su.execute("select coalesce(sum(rows_checked), 0), count(*)"
                             " from tenantgate.audit_verify()").fetchone()
        old_broken = su.execute(OLD_BROKEN).fetchone()
    if (broken and broken[0]) or (old_broken and old_broken[0]):
        result.notes.append(f"FAILED: broken chains (0010: {broken}, baseline: {old_broken})")
    else:
        result.notes.append(f"every chain verified intact ({checked[0] if checked else 0} rows "
                            f"in {checked[1] if checked else 0} chains, and the baseline's)")
    result.notes.append(
        f"tamper-evidence window seen (audit seal every 1 s): oldest pending row "
        f"{sealer.max_age * 1000:.0f} ms, at most {sealer.max_pending} rows pending")
    result.notes.append("fsync and synchronous_commit are off on the bench server: the head "
                        "lock is held through a commit that waits for no disk, so on a server "
                        "that flushes each commit the baseline's one-chain rate is lower still")
    return result


def _fill_slice(dsn: str, orgs: list[str], per_org: int, start: dt.datetime,
                end: dt.datetime) -> None:
    """Fill `per_org` rows into each org over [start, end), two connections in parallel."""
    errors: list[BaseException] = []

    def part(mine: list[str]) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for org in mine:
                    fill(conn, org, per_org, start, end)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=part, args=(orgs[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _verify(dsn: str, orgs: list[str], anchors: dict[str, tuple[int, bytes]] | None = None,
            jobs: int = 1) -> tuple[int, int, float]:
    """(rows checked, chains broken, seconds) of audit_verify_from over `orgs`."""
    totals = [0, 0]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def part(mine: list[str]) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for org in mine:
                    seq, anchor = anchors[org] if anchors else (None, None)
                    row = conn.execute("select rows_checked, first_broken_seq from"
                                       " tenantgate.audit_verify_from(%s, %s, %s)",
                                       (org, seq, anchor)).fetchone()
                    with lock:
                        totals[0] += int(row[0]) if row else 0
                        totals[1] += 1 if not row or row[1] is not None else 0
        except BaseException as exc:
            errors.append(exc)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=part, args=(orgs[i::jobs],)) for i in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return totals[0], totals[1], time.perf_counter() - t0


_EXPORT_CHILD = """
import resource, sys
from tenantgate.cli.main import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print("maxrss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def _export(dsn: str, org: str) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of `tenantgate audit export --org ORG` in a child process."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _EXPORT_CHILD, "audit", "export", "--org", org,
                           "--output", "/dev/null", "--dsn", dsn],
                          capture_output=True, text=True, check=False, timeout=1800)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"audit export failed: {done.stderr[-2000:]}")
    rss = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("maxrss_kb")]
    return seconds, int(rss[-1])


def audit_at_scale(server: pgserver.RunningServer, smoke: bool,
                   total: int | None = None) -> list[Result]:
    total = total or (20_000 if smoke else 10_000_000)
    seconds = 0.5 if smoke else 3.0
    checkpoints = [0, total // 10, total // 2, total]
    db = create_database(server, "audit_scale")
    dsn = db.superuser_dsn
    with psycopg.connect(dsn, autocommit=True) as su:
        _world.add_orgs(su, FILL_ORGS + LIVE_ORGS)
        orgs = [str(r[0]) for r in su.execute(
            "select org_id from tenantgate.orgs order by org_id").fetchall()]
    fill_orgs, live_orgs = orgs[:FILL_ORGS], orgs[FILL_ORGS:]
    start, end = month_start(10), dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    appends = Result("audit_scale_append",
                     f"Audit appends per second as the log grows to {total:,} rows (8 writers, "
                     f"8 orgs, {seconds:g} s per checkpoint)", smoke=smoke)
    anchors: dict[int, dict[str, tuple[int, bytes]]] = {}
    filled_at: dict[int, int] = {}
    filled = live = 0
    rates: list[float] = []
    for cp in checkpoints:
        fill_rate: int | str = ""
        if cp > filled:
            t0 = time.perf_counter()
            per_org = (cp - filled) // FILL_ORGS
            _fill_slice(dsn, fill_orgs, per_org, start + (end - start) * (filled / total),
                        start + (end - start) * (cp / total))
            fill_rate = round(per_org * FILL_ORGS / (time.perf_counter() - t0))
            filled += per_org * FILL_ORGS
            with psycopg.connect(dsn, autocommit=True) as su:
                su.execute("analyze tenantgate.audit_log")
                anchors[cp] = {str(r[0]): (int(r[1]), bytes(r[2])) for r in su.execute(
                    "select org_id, seq, head_hash from tenantgate.audit_heads"
                    " where org_id = any(%s::uuid[])", (fill_orgs,)).fetchall()}
        filled_at[cp] = filled
        n, elapsed, lat = run_threads(dsn, LIVE_ORGS, seconds, _appender(NEW_APPEND, live_orgs))
        live += n
        rates.append(n / elapsed)
        appends.rows.append({"rows_in_log": f"{filled + live:,}",
                             "appends_per_s": round(n / elapsed), **summary_ms(lat),
                             "fill_rows_per_s": fill_rate})
    with psycopg.connect(dsn, autocommit=True) as su:
        seal_pending(su)
    appends.ratios[f"appends/s at {total:,} rows / at 0"] = rates[-1] / rates[0]
    appends.notes.append("filled rows are chained server-side (tenantgate.audit_chain over "
                         "generate_series), two connections in parallel; fill_rows_per_s is that")

    ops = Result("audit_scale_ops", f"Audit verify, export and retire at {filled:,} filled rows "
                                    f"({FILL_ORGS} chains)", smoke=smoke)
    rows, broken, secs = _verify(dsn, fill_orgs, jobs=2)
    ops.rows.append({"operation": "verify, every chain from its start (2 connections)",
                     "rows": rows, "seconds": round(secs, 2), "rows_per_s": round(rows / secs)})
    mid = checkpoints[-2]
    r_rows, r_broken, r_secs = _verify(dsn, fill_orgs, anchors[mid], jobs=2)
    ops.rows.append({"operation": f"verify, resumed from the heads anchored at {mid:,} rows "
                                  "(2 connections)",
                     "rows": r_rows, "seconds": round(r_secs, 2),
                     "rows_per_s": round(r_rows / r_secs)})
    ops.ratios["resumed verify seconds / full verify seconds"] = r_secs / secs
    if broken or r_broken or rows != filled or r_rows != filled - filled_at[mid]:
        ops.notes.append(f"FAILED: verify found {broken}/{r_broken} broken chains, "
                         f"checked {rows}/{r_rows} rows")
    big_s, big_rss = _export(dsn, fill_orgs[0])
    small_s, small_rss = _export(dsn, live_orgs[0])
    per_chain = filled // FILL_ORGS
    ops.rows.append({"operation": "export one chain (tenantgate audit export, child process)",
                     "rows": per_chain, "seconds": round(big_s, 2),
                     "rows_per_s": round(per_chain / big_s), "peak_rss_mib": round(big_rss / 1024)})
    ops.rows.append({"operation": "export a small chain (the same, for the memory baseline)",
                     "rows": live // LIVE_ORGS, "seconds": round(small_s, 2),
                     "peak_rss_mib": round(small_rss / 1024)})
    ops.ratios["export peak RSS: one big chain / a small chain"] = big_rss / small_rss
    with psycopg.connect(dsn, autocommit=True) as su:
        t0 = time.perf_counter()
        cut = su.execute("select org_id, seq, rows_retired from tenantgate.audit_retire(%s)",
                         (month_start(8),)).fetchall()
        retire_s = time.perf_counter() - t0
    retired = sum(int(c[2]) for c in cut if str(c[0]) in fill_orgs)
    ops.rows.append({"operation": "retire the two oldest months (audit_retire)",
                     "rows": retired, "seconds": round(retire_s, 2)})
    rest, rest_broken, rest_s = _verify(dsn, fill_orgs, jobs=2)
    ops.rows.append({"operation": "verify the remainder from the cuts (2 connections)",
                     "rows": rest, "seconds": round(rest_s, 2), "rows_per_s": round(rest / rest_s)})
    if rest_broken or rest != filled - retired:
        ops.notes.append(f"FAILED: after retiring, {rest_broken} chains broken, {rest} rows "
                         f"checked of {filled - retired}")
    else:
        ops.notes.append("every chain verified intact, in full, resumed and after retiring")
    return [appends, ops]


def run(server: pgserver.RunningServer, smoke: bool = False,
        rows: int | None = None) -> list[Result]:
    budget = Deadline(120 if smoke else 600)
    out = [chain_contention(server, smoke)]
    if not budget.over():
        out.extend(audit_at_scale(server, smoke, rows))
    return out


def main() -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--only", choices=["chains", "scale"])
    parser.add_argument("--rows", type=int, help="audit rows at the last checkpoint "
                                                 "(default 10,000,000; smoke 20,000)")
    args = parser.parse_args()
    with bench_server(args.dsn) as server:
        if args.only == "chains":
            results = [chain_contention(server, args.smoke)]
        elif args.only == "scale":
            results = audit_at_scale(server, args.smoke, args.rows)
        else:
            results = run(server, args.smoke, args.rows)
    for r in results:
        print_result(r)
    if args.json:
        args.json.write_text("[" + ",".join(r.to_json() for r in results) + "]")
    return 1 if any(n.startswith("FAILED") for r in results for n in r.notes) else 0


if __name__ == "__main__":
    sys.exit(main())
