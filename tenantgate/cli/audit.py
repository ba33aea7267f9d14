"""`tenantgate audit`: follow, verify, export the hash-chained audit log and find anomalies."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.progress import Progress

from tenantgate.cli import _refs, audit_seal
from tenantgate.cli._common import (
    DsnOption,
    JsonOption,
    connect,
    emit_rows,
    epilog,
    fail,
    fetch_dicts,
    stderr,
    to_json_line,
)

app = typer.Typer(help="Tail, verify, seal, export and retire the audit chain; report anomalies.",
                  no_args_is_help=True)
app.command(epilog=epilog("tenantgate audit seal", "tenantgate audit seal --follow --interval 1")
            )(audit_seal.seal)
app.command(epilog=epilog("tenantgate audit retire --before 2026-01-01",
                          "tenantgate audit retire --before 2026-01-01 --yes --json > cut.json"))(
    audit_seal.retire)

OrgOption = Annotated[str | None, typer.Option("--org", help="Only this org (name or id).")]
DECISIONS = ("allowed", "denied", "error", "approval_required", "rate_limited", "no_credit")

_ROWS = """
select o.name as org, a.org_id, a.seq, a.occurred_at, a.decision, a.tool_name,
       op.email as operator, a.operator_id, a.customer_id, a.session_id, a.request_id, a.detail
from tenantgate.audit_log a
join tenantgate.orgs o on o.org_id = a.org_id
left join tenantgate.operators op on op.org_id = a.org_id and op.operator_id = a.operator_id
where (%(org)s::uuid is null or a.org_id = %(org)s)
  and (%(operator)s::uuid is null or a.operator_id = %(operator)s)
  and (%(tool)s::text is null or a.tool_name = %(tool)s)
  and (%(decision)s::text is null or a.decision = %(decision)s)
"""


def _filters(conn: Any, org: str | None, operator: str | None, tool: str | None,
             decision: str | None) -> dict[str, Any]:
    if decision is not None and decision not in DECISIONS:
        fail(f"--decision must be one of {', '.join(DECISIONS)}, got {decision!r}", 2)
    if operator is not None and org is None:
        fail("--operator needs --org (operators are named within an org)", 2)
    org_id = _refs.org_id(conn, org) if org else None
    operator_id = _refs.operator_id(conn, org_id, operator) if operator and org_id else None
    return {"org": org_id, "operator": operator_id, "tool": tool, "decision": decision}


def _line(row: dict[str, Any]) -> str:
    detail = json.dumps(row["detail"], sort_keys=True, separators=(",", ":"))
    return (f"{row['occurred_at']:%Y-%m-%d %H:%M:%S} {row['org']} #{row['seq']} "
            f"{row['decision']:<17} {row['tool_name'] or '-'} "
            f"operator={row['operator'] or '-'} request={row['request_id'] or '-'} {detail}")


@app.command(epilog=epilog("tenantgate audit tail --org acme --decision denied",
                           "tenantgate audit tail --follow --json | jq .tool_name"))
def tail(
    org: OrgOption = None,
    operator: Annotated[str | None, typer.Option(help="Only this operator (email or id).")
                        ] = None,
    tool: Annotated[str | None, typer.Option(help="Only this tool.")] = None,
    decision: Annotated[str | None, typer.Option(help="Only this decision: " +
                                                 ", ".join(DECISIONS) + ".")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Newest rows to show.")
                     ] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new rows.")
                      ] = False,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls with -f.")
                        ] = 1.0,
    stop_after: Annotated[float | None, typer.Option(hidden=True, help="Stop -f after N s.")
                          ] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the newest audit rows, one per line (JSON lines with --json); -f follows."""
    def show(row: dict[str, Any]) -> None:
        typer.echo(to_json_line(row) if as_json else _line(row))

    with connect(dsn) as conn:
        params = _filters(conn, org, operator, tool, decision)
        rows = fetch_dicts(conn, _ROWS + " order by a.occurred_at desc, a.seq desc limit %(n)s",
                           {**params, "n": lines})
        heads: dict[uuid.UUID, int] = {
            r[0]: r[1] for r in conn.execute(
                "select org_id, seq from tenantgate.audit_heads").fetchall()}
        for row in reversed(rows):
            show(row)
        if not follow:
            return
        started = time.monotonic()
        try:
            while stop_after is None or time.monotonic() - started < stop_after:
                time.sleep(interval)
                new = fetch_dicts(
                    conn, _ROWS + """ and a.seq > coalesce((
                        select h.seq from unnest(%(orgs)s::uuid[], %(seqs)s::bigint[])
                          as h(org_id, seq) where h.org_id = a.org_id), 0)
                      order by a.occurred_at, a.org_id, a.seq""",
                    {**params, "orgs": list(heads), "seqs": list(heads.values())})
                for row in new:
                    show(row)
                    heads[row["org_id"]] = max(heads.get(row["org_id"], 0), row["seq"])
        except KeyboardInterrupt:
            return


@app.command(epilog=epilog("tenantgate audit verify", "tenantgate audit verify --org acme --json",
                           "tenantgate audit verify --anchor heads-2026-11-21.json"))
def verify(
    org: OrgOption = None,
    anchor: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="Chain heads kept outside the database (`audit heads --json`, `audit retire "
             "--json`): verify only the rows after each, and check the anchored row still "
             "matches.")
    ] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute every org's hash chain and report the first broken link per org (exit 1).

    Without --anchor a chain is read from its last retirement cut (or its first row); with it,
    from the anchored head on, so a daily run reads only the day's rows.
    """
    anchors: dict[str, dict[str, Any]] = {}
    if anchor is not None:
        try:
            anchors = {str(h["org_id"]): {"seq": int(h["seq"]),
                                          "hash": bytes.fromhex(str(h["head_hash"]))}
                       for h in json.loads(anchor.read_text())}
        except (ValueError, KeyError, TypeError) as exc:
            fail(f"cannot read anchors from {str(anchor)!r}: {exc}; "
                 "it should be the JSON of `tenantgate audit heads --json`")
    started = time.monotonic()
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org) if org else None
        orgs = fetch_dicts(conn, """
            select c.org_id, coalesce(o.name, '(unknown org)') as name
            from (select a.org_id from tenantgate.audit_orgs() a
                  union select %(org)s::uuid where %(org)s::uuid is not null) c
            left join tenantgate.orgs o on o.org_id = c.org_id
            where %(org)s::uuid is null or c.org_id = %(org)s
            order by 2, 1""", {"org": org_id})
        results: list[dict[str, Any]] = []
        with Progress(console=stderr, transient=True, disable=as_json) as progress:
            task = progress.add_task("verifying audit chains", total=len(orgs))
            for o in orgs:
                pinned = anchors.get(str(o["org_id"]))
                row = conn.execute(
                    "select rows_checked, first_broken_seq, problem, last_seq,"
                    " pg_catalog.encode(last_hash, 'hex'), pending"
                    " from tenantgate.audit_verify_from(%s, %s, %s)",
                    (o["org_id"], pinned["seq"] if pinned else None,
                     pinned["hash"] if pinned else None)).fetchone()
                checked, broken, problem, last_seq, last_hash, pending = (
                    row if row else (0, None, None, None, None, 0))
                results.append({"org": o["name"], "org_id": o["org_id"], "rows_checked": checked,
                                "intact": broken is None, "first_broken_seq": broken,
                                "problem": problem, "from_seq": pinned["seq"] if pinned else None,
                                "last_seq": last_seq, "last_hash": last_hash,
                                "pending": pending})
                progress.advance(task)
    seconds = time.monotonic() - started
    broken_count = sum(1 for r in results if not r["intact"])
    rows = sum(int(r["rows_checked"] or 0) for r in results)
    pending_count = sum(int(r["pending"] or 0) for r in results)
    emit_rows(results, as_json=as_json, title="audit chains", empty="no audit rows yet")
    stderr.print(f"{len(results)} chains verified, {broken_count} broken; {rows} rows in "
                 f"{seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} rows/s)"
                 + (f"; {pending_count} rows pending, not chained yet (`tenantgate audit seal`)"
                    if pending_count else ""))
    if broken_count:
        raise typer.Exit(1)


@app.command(epilog=epilog("tenantgate audit heads --json > heads-$(date +%F).json"))
def heads(dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Print each org's chain head (seq, hash): store it outside the database to anchor it."""
    with connect(dsn) as conn:
        rows = fetch_dicts(conn, "select org_id, seq, pg_catalog.encode(head_hash, 'hex')"
                           " as head_hash from tenantgate.audit_chain_heads()")
    emit_rows(rows, as_json=as_json, title="audit chain heads", empty="no audit rows yet")


@app.command(epilog=epilog("tenantgate audit export --org acme --output acme-audit.jsonl",
                           "tenantgate audit export --since 2026-11-01 | gzip > audit.jsonl.gz"))
def export(
    org: OrgOption = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="File to write (default stdout).")] = None,
    dsn: DsnOption = None,
) -> None:
    """Export audit rows as JSON lines, with the hashes and the exact text each hash covers.

    row_hash = sha256(prev_hash || utf8(canonical)), so the chain can be verified anywhere. Rows
    stream through a server-side cursor: memory stays flat however many there are.
    """
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org) if org else None
        params = {"org": org_id, "since": since, "until": until}
        out: IO[str]
        out = output.open("w", encoding="utf-8") if output else _stdout()
        try:
            with Progress(console=stderr, transient=True, disable=output is None) as progress:
                task = progress.add_task("exporting", total=None)
                total = stream_export(conn, params, out,
                                      lambda n: progress.advance(task, n))
        finally:
            if output:
                out.close()
    if output:
        stderr.print(f"exported {total} rows to {output}")


EXPORT_BATCH = 2000
_EXPORT_NAMES = ("org_id", "seq", "occurred_at", "at_us", "session_id", "operator_id",
                 "customer_id", "request_id", "tool_name", "decision", "detail", "prev_hash",
                 "row_hash", "canonical")
_EXPORT = """
select a.org_id, a.seq, a.occurred_at,
       (extract(epoch from a.occurred_at) * 1000000)::bigint as at_us,
       a.session_id, a.operator_id, a.customer_id, a.request_id, a.tool_name,
       a.decision, a.detail, pg_catalog.encode(a.prev_hash, 'hex'),
       pg_catalog.encode(a.row_hash, 'hex'),
       tenantgate.audit_canonical(a.org_id, a.seq, a.occurred_at,
         a.session_id, a.operator_id, a.customer_id, a.request_id,
         a.tool_name, a.decision, a.detail)
from tenantgate.audit_log a
where (%(org)s::uuid is null or a.org_id = %(org)s)
  and (%(since)s::timestamptz is null or a.occurred_at >= %(since)s)
  and (%(until)s::timestamptz is null or a.occurred_at < %(until)s)
order by a.org_id, a.seq
"""


def stream_export(conn: Any, params: dict[str, Any], out: IO[str],
                  progress: Callable[[int], object] = lambda n: None) -> int:
    """Write the matching audit rows to `out` as JSON lines, EXPORT_BATCH rows per fetch from a
    server-side cursor (never the whole result in memory); returns how many rows."""
    total = 0
    with conn.transaction(), conn.cursor(name="audit_export") as cur:
        cur.itersize = EXPORT_BATCH
        cur.execute(_EXPORT, params)
        while batch := cur.fetchmany(EXPORT_BATCH):
            out.write("".join(to_json_line(dict(zip(_EXPORT_NAMES, row, strict=True))) + "\n"
                              for row in batch))
            total += len(batch)
            progress(len(batch))
    return total


def _stdout() -> IO[str]:
    import sys

    return sys.stdout


@app.command(epilog=epilog("tenantgate audit anomalies --since 24h",
                           "tenantgate audit anomalies --max-denials 3 --burst 30 "
                           "--work-hours 7-19 --timezone Europe/Berlin --json"))
def anomalies(
    org: OrgOption = None,
    since: Annotated[str, typer.Option(help="Look back this far: 30m, 24h, 7d.")] = "24h",
    max_denials: Annotated[int, typer.Option(
        min=1, help="Denials per operator (or unverified, per org) before it is reported.")] = 5,
    burst: Annotated[int, typer.Option(min=1, help="Calls per operator within --burst-window "
                                       "before it is a burst.")] = 60,
    burst_window: Annotated[int, typer.Option(min=1, help="Burst window in seconds.")] = 60,
    work_hours: Annotated[str, typer.Option(help="Working hours START-END (24h clock); calls "
                                            "outside are off-hours.")] = "7-20",
    timezone: Annotated[str, typer.Option(help="Time zone of --work-hours.")] = "UTC",
    max_rows: Annotated[int, typer.Option(min=1, help="Rows returned per operator (detail.rows)"
                                          " before it is unusually large.")] = 5000,
    max_bytes: Annotated[int, typer.Option(min=1, help="Bytes returned per operator "
                                           "(detail.bytes) before it is unusually large.")
                         ] = 10_000_000,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Report repeated authorization failures, bursts, off-hours access and large result volumes.

    Exit code 1 when anything is reported.
    """
    lookback = _interval(since)
    try:
        start_hour, end_hour = (int(x) for x in work_hours.split("-", 1))
        if not (0 <= start_hour <= 23 and 1 <= end_hour <= 24 and start_hour < end_hour):
            raise ValueError
    except ValueError:
        fail(f"--work-hours must look like 7-20, got {work_hours!r}", 2)
    with connect(dsn) as conn:
        zone = conn.execute("select count(*) from pg_catalog.pg_timezone_names where name = %s",
                            (timezone,)).fetchone()
        if not zone or not zone[0]:
            fail(f"unknown --timezone {timezone!r}; use an IANA name such as Europe/Berlin", 2)
        org_id = _refs.org_id(conn, org) if org else None
        rows = fetch_dicts(conn, _ANOMALIES, {
            "org": org_id, "lookback": lookback, "max_denials": max_denials, "burst": burst,
            "burst_window": f"{burst_window} seconds", "start": start_hour, "end": end_hour,
            "tz": timezone, "max_rows": max_rows, "max_bytes": max_bytes})
    emit_rows(rows, as_json=as_json, title=f"audit anomalies (last {since})",
              empty=f"no anomalies in the last {since}")
    if rows:
        raise typer.Exit(1)


def _interval(text: str) -> str:
    units = {"m": "minutes", "h": "hours", "d": "days"}
    value, unit = text[:-1], text[-1:]
    if not value.isdigit() or unit not in units or int(value) <= 0:
        fail(f"--since must look like 30m, 24h or 7d, got {text!r}", 2)
    return f"{int(value)} {units[unit]}"


_ANOMALIES = """
with recent as (
  select a.*, o.name as org, op.email as operator
  from tenantgate.audit_log a
  join tenantgate.orgs o on o.org_id = a.org_id
  left join tenantgate.operators op on op.org_id = a.org_id and op.operator_id = a.operator_id
  where a.occurred_at >= now() - %(lookback)s::interval
    and (%(org)s::uuid is null or a.org_id = %(org)s)
),
denied as (
  select org, org_id, operator, occurred_at from recent where decision = 'denied'
  union all
  -- callers whose session could not be verified: recorded outside the chain by the gate
  select o.name, d.claimed_org, null, d.occurred_at
  from tenantgate.denials d
  join tenantgate.orgs o on o.org_id = d.claimed_org
  where d.occurred_at >= now() - %(lookback)s::interval
    and (%(org)s::uuid is null or d.claimed_org = %(org)s)
),
denials as (
  select 'repeated_denials' as kind, org, coalesce(operator, '(unverified)') as operator,
         count(*) as count, min(occurred_at) as first_at, max(occurred_at) as last_at,
         format('%%s denied calls (threshold %%s)', count(*), %(max_denials)s::int) as detail
  from denied
  group by org, org_id, operator
  having count(*) >= %(max_denials)s::int
),
bursts as (
  select 'burst' as kind, org, operator, max(n) as count, min(occurred_at) as first_at,
         max(occurred_at) as last_at,
         format('up to %%s calls within %%s (threshold %%s)', max(n), %(burst_window)s::interval,
                %(burst)s::int) as detail
  from (select r.org, r.operator, r.occurred_at,
               count(*) over (partition by r.org_id, r.operator_id order by r.occurred_at
                              range between %(burst_window)s::interval preceding
                                        and current row) as n
          from recent r where r.operator_id is not null) w
  where n >= %(burst)s::int
  group by org, operator
),
off_hours as (
  select 'off_hours' as kind, org, operator, count(*) as count, min(occurred_at) as first_at,
         max(occurred_at) as last_at,
         format('%%s calls outside %%s:00-%%s:00 %%s', count(*), %(start)s::int, %(end)s::int,
                %(tz)s::text)
           as detail
  from recent
  where operator_id is not null
    and (extract(hour from occurred_at at time zone %(tz)s::text) < %(start)s::int
         or extract(hour from occurred_at at time zone %(tz)s::text) >= %(end)s::int)
  group by org, operator
),
volumes as (
  select 'large_results' as kind, org, operator,
         sum(coalesce((detail->>'rows')::bigint, 0))::bigint as count,
         min(occurred_at) as first_at,
         max(occurred_at) as last_at,
         format('%%s rows, %%s bytes returned (thresholds %%s rows, %%s bytes)',
                sum(coalesce((detail->>'rows')::bigint, 0)),
                sum(coalesce((detail->>'bytes')::bigint, 0)), %(max_rows)s::bigint,
                %(max_bytes)s::bigint)
           as detail
  from recent
  where operator_id is not null and decision = 'allowed'
    and coalesce(detail->>'rows', detail->>'bytes') ~ '^[0-9]+$'
  group by org, operator
  having sum(coalesce((detail->>'rows')::bigint, 0)) >= %(max_rows)s::bigint
      or sum(coalesce((detail->>'bytes')::bigint, 0)) >= %(max_bytes)s::bigint
)
select * from denials union all select * from bursts
union all select * from off_hours union all select * from volumes
order by kind, org, operator
"""
