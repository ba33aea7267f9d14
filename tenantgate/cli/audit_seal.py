"""`tenantgate audit seal` and `audit retire`: chain what calls wrote, retire old months."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

import typer

from tenantgate.cli import _refs
from tenantgate.cli._common import (
    DsnOption,
    JsonOption,
    connect,
    emit_rows,
    fail,
    fetch_dicts,
    stderr,
)

OrgOption = Annotated[str | None, typer.Option("--org", help="Only this org (name or id).")]


def seal_pending(conn: Any, org_id: Any = None) -> list[dict[str, Any]]:
    """Make the next months' partitions, then seal every org with pending rows (or just
    `org_id`), one org per transaction."""
    conn.execute("select tenantgate.audit_partitions_ensure(pg_catalog.now(),"
                 " pg_catalog.now() + interval '2 months')")
    if org_id is not None:
        orgs = [org_id]
    else:
        orgs = [r[0] for r in conn.execute(
            "select org_id from tenantgate.audit_pending_orgs()").fetchall()]
    rows: list[dict[str, Any]] = []
    for org in orgs:
        while True:
            [row] = fetch_dicts(conn, "select org_id, sealed, head_seq, still_pending"
                                      " from tenantgate.audit_seal(%s)", (org,))
            if row["sealed"] == 0 or row["still_pending"] == 0:
                break
        rows.append(row)
    return rows


def seal(
    org: OrgOption = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep sealing every --interval.")
                      ] = False,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between seals with -f.")
                        ] = 1.0,
    stop_after: Annotated[float | None, typer.Option(hidden=True, help="Stop -f after N s.")
                          ] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Chain the audit rows calls wrote while another call held their org's chain head.

    A call writes its audit row at once and seals it itself when nobody else is sealing that org;
    otherwise the row waits, committed but not yet chained, for the next call or for this
    command. Run it with --follow (every second by default): the interval bounds how long a row
    can stay outside the chain (docs/design.md, tamper-evidence window).
    """
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org) if org else None
        started = time.monotonic()
        while True:
            rows = seal_pending(conn, org_id)
            if not follow:
                emit_rows(rows, as_json=as_json, title="audit rows sealed",
                          empty="nothing pending: every audit row is chained")
                left = sum(int(r["still_pending"]) for r in rows)
                if left:
                    fail(f"{left} audit rows are still pending: the seal could not chain them "
                         "(is there a partition for this month? `tenantgate audit seal` makes "
                         "the next months; see the server log)")
                return
            sealed = sum(int(r["sealed"]) for r in rows)
            if sealed:
                stderr.print(f"sealed {sealed} audit rows of {len(rows)} orgs")
            if stop_after is not None and time.monotonic() - started >= stop_after:
                return
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return


def retire(
    before: Annotated[str, typer.Option(help="Retire the months wholly before this date "
                                             "(ISO 8601; at most the first of this month).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do it (without, only say what it would do).")
                   ] = False,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Drop the audit log's monthly partitions before --before, oldest first (needs the DBA).

    Prints, per org, the last row retired: keep it outside the database. `audit verify --anchor`
    with it verifies what remains without the retired rows.
    """
    try:
        cutoff = dt.datetime.fromisoformat(before)
    except ValueError:
        fail(f"--before must be an ISO 8601 date such as 2026-01-01, got {before!r}", 2)
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=dt.UTC)
    with connect(dsn) as conn:
        if not yes:
            parts = fetch_dicts(conn, """
                select c.relname as partition, pg_catalog.pg_get_expr(c.relpartbound, c.oid)
                       as bounds
                  from pg_catalog.pg_inherits i join pg_catalog.pg_class c on c.oid = i.inhrelid
                 where i.inhparent = 'tenantgate.audit_log'::pg_catalog.regclass
                 order by 1""")
            emit_rows(parts, as_json=as_json, title="audit partitions",
                      empty="the audit log has no partitions")
            stderr.print(f"nothing retired: add --yes to drop the months before {cutoff:%Y-%m-%d}")
            return
        with conn.transaction():
            rows = fetch_dicts(conn, "select org_id, seq, pg_catalog.encode(head_hash, 'hex')"
                                     " as head_hash, partition, rows_retired"
                                     " from tenantgate.audit_retire(%s)", (cutoff,))
    emit_rows(rows, as_json=as_json, title="chains cut (keep these anchors outside the database)",
              empty=f"no partition ends before {cutoff:%Y-%m-%d}: nothing retired")
    if rows:
        stderr.print(f"retired {sum(int(r['rows_retired']) for r in rows)} rows; verify what "
                     "remains with `tenantgate audit verify --anchor <this output as JSON>`")
