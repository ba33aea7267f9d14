"""What the database says about a tool's statement: its output columns, relations and writes.

Each statement is planned and described inside a transaction that is always rolled back, with
every placeholder a typed NULL (so `org_id = NULL` matches no row even for a write).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from tenantgate.cli.toolfile import shards
from tenantgate.cli.toolfile import statement as st
from tenantgate.cli.toolfile.spec import ToolFileError, ToolSpec


@dataclass
class Described:
    """One statement as PostgreSQL plans it."""

    columns: dict[str, str] = field(default_factory=dict)  # output column -> schema.table.column
    relations: set[str] = field(default_factory=set)
    writes: bool = False


def _walk(plan: Any, out: Described) -> None:
    if isinstance(plan, dict):
        if plan.get("Node Type") == "ModifyTable":
            out.writes = True
        if "Relation Name" in plan:
            out.relations.add(f"{plan.get('Schema', 'public')}.{plan['Relation Name']}")
        for value in plan.values():
            _walk(value, out)
    elif isinstance(plan, list):
        for value in plan:
            _walk(value, out)


def describe(conn: psycopg.Connection[Any], tool: ToolSpec, text: str) -> Described:
    """Plan and describe one statement of `tool` (its statement or its preview)."""
    query = st.for_describe(text, tool.parameters)
    out = Described()
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("set local statement_timeout = '10s'")
            row = conn.execute(
                sql.SQL("explain (format json, verbose) {}").format(sql.SQL(query))
            ).fetchone()
            assert row is not None
            plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
            _walk(plan, out)
            out.relations = shards.tables_of(conn, out.relations)
            wrapped = query if out.writes else f"select * from ({query}) tenantgate_t limit 0"
            cur = conn.execute(sql.SQL(wrapped))
            names = [c.name for c in cur.description or []]
            origins = shards.column_origins(conn, wrapped, len(names))
            wanted = [(oid, col) for oid, col in origins if oid]
            found: dict[tuple[int, int], str] = {}
            if wanted:
                rows = conn.execute(
                    "select c.oid::bigint, a.attnum::int,"
                    " n.nspname || '.' || c.relname || '.' || a.attname"
                    " from pg_catalog.pg_class c"
                    " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
                    " join pg_catalog.pg_attribute a on a.attrelid = c.oid"
                    " where (c.oid::bigint, a.attnum::int) in"
                    " (select * from unnest(%s::bigint[], %s::int[]))",
                    ([w[0] for w in wanted], [w[1] for w in wanted]),
                ).fetchall()
                found = {(int(r[0]), int(r[1])): str(r[2]) for r in rows}
            for name, origin in zip(names, origins or [(0, 0)] * len(names), strict=True):
                if origin in found:
                    out.columns[name] = found[origin]
    except psycopg.Error as exc:
        raise ToolFileError(
            f"tool {tool.name!r}: the database refused its statement: "
            f"{(exc.diag.message_primary or str(exc)).strip()}"
        ) from None
    # RETURNING columns carry no origin: take them from the one relation written.
    if out.writes and len(out.relations) >= 1:
        target = sorted(out.relations)[0] if len(out.relations) == 1 else None
        for name in names:
            if name not in out.columns and target is not None:
                out.columns[name] = f"{target}.{name}"
    for name in names:
        out.columns.setdefault(name, "")
    return out


def enrolled(conn: psycopg.Connection[Any], relations: set[str]) -> set[str]:
    """Those of `relations` that carry tenantgate's isolation policy."""
    if not relations:
        return set()
    rows = conn.execute(
        "select n.nspname || '.' || c.relname from pg_catalog.pg_policy p"
        " join pg_catalog.pg_class c on c.oid = p.polrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where p.polname = 'tenantgate_isolation' and n.nspname || '.' || c.relname = any(%s)",
        (sorted(relations),),
    ).fetchall()
    return {str(r[0]) for r in rows}


def classified(conn: psycopg.Connection[Any]) -> dict[str, str]:
    rows = conn.execute(
        "select relation || '.' || column_name, data_class from tenantgate.column_classes"
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def defined_tools(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("select tool_name from tenantgate.tool_definitions order by 1").fetchall()
    return [str(r[0]) for r in rows]
