"""Bulk, validly chained audit rows made server-side, for the audit benchmarks and tests.

Writing straight into tenantgate.audit_log is what a superuser can do and nobody else can; the
rows extend the org's chain from its current head exactly as sealing would (same canonical text,
same hashes), with occurred_at = sealed_at spread evenly over a time range.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

_FILL = """
with head as (
  select h.seq, h.head_hash from tenantgate.audit_heads h where h.org_id = %(org)s::uuid
), g as (
  select h.seq + i as seq, h.head_hash as seed,
         %(start)s::timestamptz + (i - 1) * %(step)s::interval as at
    from head h, pg_catalog.generate_series(1, %(n)s::bigint) i
), rows as (
  select g.seq, g.seed, g.at, 'fill-' || g.seq as request_id,
         pg_catalog.jsonb_build_object('args_sha256', pg_catalog.md5(g.seq::text)
                                       || pg_catalog.md5(g.at::text), 'rows', g.seq %% 50,
                                       'bytes', 200 + g.seq %% 5000, 'truncated', false) as detail
    from g
), hashed as (
  select r.*, tenantgate.audit_chain(r.seed, pg_catalog.convert_to(tenantgate.audit_canonical(
           %(org)s::uuid, r.seq, r.at, %(session)s::uuid, %(operator)s::uuid, %(customer)s::uuid,
           r.request_id,
           'list_tickets', 'allowed', r.detail), 'UTF8'))
           over (order by r.seq rows between unbounded preceding and current row) as row_hash
    from rows r
), ins as (
  insert into tenantgate.audit_log
    (org_id, seq, occurred_at, session_id, operator_id, customer_id, request_id, tool_name,
     decision, detail, prev_hash, row_hash, entry_id, sealed_at)
  select %(org)s::uuid, h.seq, h.at, %(session)s::uuid, %(operator)s::uuid,
         %(customer)s::uuid, h.request_id,
         'list_tickets', 'allowed', h.detail,
         pg_catalog.lag(h.row_hash, 1, h.seed) over (order by h.seq), h.row_hash, null, h.at
    from hashed h
  returning seq, row_hash, sealed_at
)
update tenantgate.audit_heads h
   set (seq, head_hash, sealed_at) = (select i.seq, i.row_hash, i.sealed_at from ins i
                                       order by i.seq desc limit 1)
 where h.org_id = %(org)s::uuid
"""


def fill(conn: psycopg.Connection[Any], org_id: str, rows: int, start: dt.datetime,
         end: dt.datetime, ids: tuple[str | None, str | None, str | None] = (None, None, None),
         chunk: int = 250_000) -> None:
    """Append `rows` chained rows to `org_id`'s chain, timed evenly over [start, end).

    `ids` are the (session, operator, customer) every row names. Rows go in chunks of `chunk`,
    one statement and one commit each; the partitions for the range are created first.
    """
    if rows <= 0:
        return
    step = (end - start) / rows
    session, operator, customer = ids
    conn.execute("select tenantgate.audit_partitions_ensure(%s, %s)", (start, end))
    conn.execute(
        "insert into tenantgate.audit_heads (org_id, seq, head_hash) values (%s, 0,"
        " pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex')) on conflict (org_id) do nothing",
        (org_id,))
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        with conn.transaction():
            conn.execute("set local work_mem = '256MB'")
            conn.execute(_FILL, {"org": org_id, "n": n, "start": start + step * done,
                                 "step": step, "session": session, "operator": operator,
                                 "customer": customer})
        done += n
