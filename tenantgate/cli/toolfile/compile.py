"""Check tools files against the database and compile them into the SQL that `apply` runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from tenantgate.cli import citus_ddl
from tenantgate.cli.toolfile import database as db
from tenantgate.cli.toolfile import statement as st
from tenantgate.cli.toolfile.spec import ToolFileError, ToolsFile, ToolSpec


@dataclass
class Checked:
    """A tool that passed every check, with its output columns' data-class sources."""

    tool: ToolSpec
    columns: dict[str, str]
    has_preview: bool
    preview_columns: list[str]


def _check_statement(
    conn: psycopg.Connection[Any], tool: ToolSpec, text: str, what: str, classes: dict[str, str]
) -> dict[str, str]:
    where = f"tool {tool.name!r} ({what})"
    used = st.uses_context(text, tool.parameters)
    if used != set(st.CONTEXT):
        raise ToolFileError(
            f"{where}: filter on both :org_id and :customer_id, the verified session's tenant "
            f"(missing: {', '.join(sorted(set(st.CONTEXT) - used))})"
        )
    described = db.describe(conn, tool, text)
    outside = described.relations - db.enrolled(conn, described.relations)
    if outside:
        raise ToolFileError(
            f"{where}: touches tables that are not enrolled: {', '.join(sorted(outside))}; "
            "enrol them first (tenantgate db enrol TABLE)"
        )
    if not described.relations:
        raise ToolFileError(f"{where}: reads no enrolled table")
    if what == "statement":
        if described.writes and tool.access != "write":
            raise ToolFileError(f"{where}: writes, but the tool says access: read")
        if not described.writes and tool.access == "write":
            raise ToolFileError(f"{where}: writes nothing, but the tool says access: write")
    elif described.writes:
        raise ToolFileError(f"{where}: a preview only reads")
    columns: dict[str, str] = {}
    for column, origin in described.columns.items():
        source = tool.columns.get(column) or origin
        if not source:
            raise ToolFileError(
                f"{where}: output column {column!r} has no source table; map it in `columns:` "
                f"(e.g. {column}: schema.table.column) so its data class is known"
            )
        if source not in classes:
            relation, _, col = source.rpartition(".")
            raise ToolFileError(
                f"{where}: output column {column!r} ({source}) has no data class; classify it: "
                f"insert into tenantgate.column_classes (relation, column_name, data_class) "
                f"values ('{relation}', '{col}', 'internal')"
            )
        columns[column] = source
    return columns


def check(conn: psycopg.Connection[Any], files: list[ToolsFile]) -> list[Checked]:
    """Every check `tenantgate tools check` runs; the first problem raises ToolFileError."""
    seen: dict[str, str] = {}
    classes = db.classified(conn)
    out: list[Checked] = []
    for f in files:
        for tool in f.tools.values():
            if tool.name in seen:
                raise ToolFileError(
                    f"tool {tool.name!r} is declared in {seen[tool.name]} and {f.path}"
                )
            seen[tool.name] = f.path
            if tool.kind == "http":
                out.append(Checked(tool, dict(tool.columns), False, []))
                continue
            assert tool.statement is not None
            columns = _check_statement(conn, tool, tool.statement, "statement", classes)
            preview: list[str] = []
            if tool.preview:
                preview = list(_check_statement(conn, tool, tool.preview, "preview", classes))
            out.append(Checked(tool, columns, bool(tool.preview), preview))
    return out


def _tag(text: str) -> str:
    tag = "$tg_" + hashlib.sha256(text.encode()).hexdigest()[:12] + "$"
    if tag in text:  # cannot happen by accident; refuse rather than mis-quote
        raise ToolFileError("a statement contains the generated quote tag")
    return tag


def _row_object(columns: list[str]) -> str:
    """jsonb of exactly the columns known at apply time (so no new column can slip out)."""

    def ident(name: str) -> str:
        return 'tenantgate_rows."' + name.replace('"', '""') + '"'

    def literal(name: str) -> str:
        return "'" + name.replace("'", "''") + "'"

    chunks = [columns[i : i + 50] for i in range(0, len(columns), 50)] or [[]]
    objects = (", ".join(f"{literal(c)}, {ident(c)}" for c in chunk) for chunk in chunks)
    return " || ".join(f"pg_catalog.jsonb_build_object({o})" for o in objects)


def _function(name: str, tool: ToolSpec, text: str, writes: bool, columns: list[str]) -> str:
    """PL/pgSQL, so each session plans the statement once and reuses the plan."""
    body = st.for_function(text, tool.parameters)
    tag = _tag(body)
    volatility = "volatile" if writes else "stable"  # a stable function cannot write
    return (
        f"create or replace function tenantgate_tools.{name}(uuid, uuid, jsonb)\n"
        f"returns setof jsonb\nlanguage plpgsql\n{volatility}\nsecurity definer\n"
        f"set search_path = pg_catalog, pg_temp\nas {tag}\nbegin\n  return query\n"
        f"  with tenantgate_rows as (\n{body}\n  )\n"
        f"  select {_row_object(columns)}\n  from tenantgate_rows;\nend\n{tag};\n"
        f"revoke all on function tenantgate_tools.{name}(uuid, uuid, jsonb) from public;\n"
        f"grant execute on function tenantgate_tools.{name}(uuid, uuid, jsonb)"
        " to tenantgate_owner;\n"
    )


def _dispatcher(checked: list[Checked]) -> str:
    """One static call per tool, so the gate's statement is planned once per session."""
    names = []
    for c in checked:
        if c.tool.kind != "http":
            names.append(c.tool.name)
            if c.has_preview:
                names.append(c.tool.name + "__preview")
    branches = "".join(
        f"  {'if' if i == 0 else 'elsif'} $1 = '{n}' then\n"
        f"    return query select * from tenantgate_tools.{n}($2, $3, $4);\n"
        for i, n in enumerate(names)
    )
    body = branches + ("  else\n" if names else "") + (
        "    raise exception using errcode = 'TG404', message = 'tenantgate: no such tool';\n"
    ) + ("  end if;\n" if names else "")
    return (
        "create or replace function tenantgate_tools.dispatch(text, uuid, uuid, jsonb)\n"
        "returns setof jsonb\nlanguage plpgsql\nvolatile\n"
        "set search_path = pg_catalog, pg_temp\nas $tg_dispatch$\nbegin\n"
        + body
        + "end\n$tg_dispatch$;\n"
        "revoke all on function tenantgate_tools.dispatch(text, uuid, uuid, jsonb) from public;\n"
        "grant execute on function tenantgate_tools.dispatch(text, uuid, uuid, jsonb)"
        " to tenantgate_owner;\n"
    )


def _lit(conn: psycopg.Connection[Any], value: Any) -> str:
    return sql.Literal(value).as_string(conn)


def _json(conn: psycopg.Connection[Any], value: Any) -> str:
    if value is None:
        return "null"
    return _lit(conn, json.dumps(value, sort_keys=True)) + "::jsonb"


def render(conn: psycopg.Connection[Any], files: list[ToolsFile]) -> str:
    """The whole script `tenantgate tools apply` runs in one transaction."""
    checked = check(conn, files)
    # On a distributed Citus coordinator DDL reaches the workers as the current role, and
    # tenantgate_tool cannot log in (by design: a tool statement that leaves its org's node fails
    # closed). The functions are created as the DBA there, then handed to tenantgate_tool.
    found = citus_ddl.state(conn)
    as_dba = found.coordinator and found.distributed
    names = [c.tool.name for c in checked]
    removed = [n for n in db.defined_tools(conn) if n not in names]
    file_hash = hashlib.sha256("".join(f.sha256 for f in files).encode()).hexdigest()
    parts = [
        "-- Generated by `tenantgate tools sql` from: " + ", ".join(f.path for f in files),
        f"-- tools: {', '.join(names)}",
        f"-- removed: {', '.join(removed) or 'none'}",
        "",
        "-- Citus: created as the DBA, then owned by tenantgate_tool (see cli/citus_ddl.py)"
        if as_dba else "set local role tenantgate_tool;",
    ]
    owned = "alter function tenantgate_tools.{}({}) owner to tenantgate_tool;"
    for name in removed:
        parts.append(f"drop function if exists tenantgate_tools.{name}(uuid, uuid, jsonb);")
        parts.append(
            f"drop function if exists tenantgate_tools.{name}__preview(uuid, uuid, jsonb);"
        )
    for c in checked:
        t = c.tool
        parts.append(f"\n-- {t.name}: {t.kind}, {t.access}, {t.returns}")
        if t.kind != "http":
            assert t.statement is not None
            parts.append(
                _function(t.name, t, t.statement, t.access == "write", list(c.columns))
            )
            if as_dba:
                parts.append(owned.format(t.name, "uuid, uuid, jsonb"))
            if t.preview:
                parts.append(
                    _function(t.name + "__preview", t, t.preview, False, c.preview_columns)
                )
                if as_dba:
                    parts.append(owned.format(t.name + "__preview", "uuid, uuid, jsonb"))
            else:
                parts.append(
                    f"drop function if exists tenantgate_tools.{t.name}__preview"
                    "(uuid, uuid, jsonb);"
                )
    parts.append(_dispatcher(checked))
    if as_dba:
        parts.append(owned.format("dispatch", "text, uuid, uuid, jsonb"))
    parts += [
        "reset role;",
        "set local role tenantgate_owner;",
        "insert into tenantgate.tool_applications (version, file_sha256, tools, removed)",
        "select coalesce(max(version), 0) + 1, "
        f"{_lit(conn, file_hash)}, {_lit(conn, names)}::text[], {_lit(conn, removed)}::text[]"
        " from tenantgate.tool_applications;",
        "delete from tenantgate.tool_definitions"
        f" where tool_name = any({_lit(conn, removed)}::text[]);",
    ]
    for c in checked:
        t = c.tool
        values = [
            _lit(conn, t.name),
            _lit(conn, "http" if t.kind == "http" else "sql"),
            _lit(conn, t.title),
            _lit(conn, t.description),
            _lit(conn, t.access),
            _lit(conn, t.returns),
            _json(conn, [p.as_json() for p in t.parameters]),
            _json(conn, t.input_schema()),
            _json(conn, t.output_schema),
            _json(conn, t.mcp_annotations()),
            _json(conn, c.columns),
            _lit(conn, c.has_preview),
            _json(conn, t.http),
            str(t.max_rows),
            str(t.max_bytes),
            _lit(conn, t.catalog.scope),
            str(t.catalog.cost),
            _lit(conn, t.catalog.approval),
            str(t.catalog.rate_limit.burst),
            repr(float(t.catalog.rate_limit.per_second)),
            _lit(conn, t.statement_sha256),
        ]
        parts.append(
            "insert into tenantgate.tool_definitions (tool_name, kind, title, description, access,"
            " returns, parameters, input_schema, output_schema, annotations, columns, has_preview,"
            " http, max_rows, max_bytes, default_scope, default_cost, default_approval,"
            " default_burst, default_per_second, statement_sha256, version)\nselect "
            + ", ".join(values)
            # INSERT ... SELECT, not VALUES with a sub-select: Citus refuses the latter on the
            # reference table tool_definitions becomes on a cluster (cli/citus_plan.py)
            + ", max(a.version) from tenantgate.tool_applications a\n"
            "on conflict (tool_name) do update set kind = excluded.kind, title = excluded.title,"
            " description = excluded.description, access = excluded.access,"
            " returns = excluded.returns, parameters = excluded.parameters,"
            " input_schema = excluded.input_schema, output_schema = excluded.output_schema,"
            " annotations = excluded.annotations, columns = excluded.columns,"
            " has_preview = excluded.has_preview, http = excluded.http,"
            " max_rows = excluded.max_rows, max_bytes = excluded.max_bytes,"
            " default_scope = excluded.default_scope, default_cost = excluded.default_cost,"
            " default_approval = excluded.default_approval,"
            " default_burst = excluded.default_burst,"
            " default_per_second = excluded.default_per_second,"
            " statement_sha256 = excluded.statement_sha256, version = excluded.version,"
            " applied_at = excluded.applied_at;"
        )
    parts.append("reset role;")
    return "\n".join(parts) + "\n"


def apply(conn: psycopg.Connection[Any], files: list[ToolsFile]) -> dict[str, Any]:
    """Check, then run the script in one transaction; returns the new version and what changed."""
    with conn.transaction():
        citus_ddl.prepare(conn, "tenantgate tools apply")  # on Citus: propagate DDL or not
        script = render(conn, files)
        conn.execute(sql.SQL(script))
        row = conn.execute(
            "select version, tools, removed from tenantgate.tool_applications"
            " order by version desc limit 1"
        ).fetchone()
    assert row is not None
    return {"version": int(row[0]), "tools": list(row[1]), "removed": list(row[2])}
