"""On a Citus coordinator, EXPLAIN names the shards a statement reaches, not its tables.

`demo.tickets_102008` is shard 102008 of `demo.tickets`. The tools-file checks (enrolled tables,
data classes) are about the distributed table, so each shard name is mapped back to it; a name is
mapped only when pg_dist_shard says that exact shard belongs to that exact table.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq

_SHARD_OWNERS = """
select r.name, pg_catalog.format('%%s.%%s', n.nspname, c.relname)
from pg_catalog.unnest(%s::text[]) as r(name)
join pg_catalog.pg_dist_shard s
  on s.shardid = pg_catalog.substring(r.name, '_([0-9]{1,19})$')::bigint
join pg_catalog.pg_class c on c.oid = s.logicalrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where r.name = n.nspname || '.' || c.relname || '_' || s.shardid
"""


def tables_of(conn: psycopg.Connection[Any], relations: set[str]) -> set[str]:
    """`relations` with every Citus shard name replaced by its distributed table's name."""
    row = conn.execute("select pg_catalog.to_regclass('pg_catalog.pg_dist_shard') is not null"
                       ).fetchone()
    if not relations or not row or not row[0]:
        return set(relations)
    owners = dict(conn.execute(_SHARD_OWNERS, (sorted(relations),)).fetchall())
    return {str(owners.get(name, name)) for name in relations}


def column_origins(conn: psycopg.Connection[Any], query: str, width: int) -> list[tuple[int, int]]:
    """(table oid, column number) of each output column, 0 where it has none.

    Taken from the prepared statement's description, which PostgreSQL builds from the parsed
    query: on Citus the executed plan's columns lose their origin (it is a custom scan), the
    parsed query's keep it.
    """
    name = b"tenantgate_describe"
    prepared = conn.pgconn.prepare(name, query.encode())
    if prepared.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.Error(prepared.error_message.decode(errors="replace"))
    try:
        described = conn.pgconn.describe_prepared(name)
        if described.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.Error(described.error_message.decode(errors="replace"))
        return [(described.ftable(i), described.ftablecol(i))
                for i in range(min(width, described.nfields))]
    finally:
        conn.pgconn.exec_(b"deallocate tenantgate_describe")
