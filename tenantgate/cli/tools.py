"""`tenantgate tools`: tools files (check, sql, apply) and the per-connector catalog.

A tools file declares tools (YAML, see docs/tools-file.md); `apply` turns each into a database
function the gate runs. The catalog (`enable`, `disable`, `list`) says which connector offers
which defined tool, to which scope, at what cost, approved by whom, at what rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import psycopg
import typer
from psycopg import errors as pgerrors

from tenantgate.cli import _refs
from tenantgate.cli._common import (
    DsnOption,
    JsonOption,
    connect,
    emit_json,
    emit_record,
    emit_rows,
    epilog,
    fail,
    fetch_dicts,
    stderr,
)

app = typer.Typer(help="Check, review and apply tools files; enable, disable and list a "
                  "connector's tools.", no_args_is_help=True)

OrgArg = Annotated[str, typer.Argument(help="Org name or id.")]
ConnectorArg = Annotated[str, typer.Argument(help="Connector name or id.")]
ToolArg = Annotated[str, typer.Argument(help="Tool name, e.g. list_tickets.")]


Approval = Literal["none", "operator", "host"]


def _definition(conn: psycopg.Connection[Any], tool: str) -> dict[str, Any]:
    """The applied definition of `tool`; a clear error naming `tools apply` when there is none."""
    rows = fetch_dicts(conn, "select tool_name, access, default_scope, default_cost,"
                       " default_approval, default_burst, default_per_second"
                       " from tenantgate.tool_definitions where tool_name = %s", (tool,))
    if not rows:
        _undefined(conn, tool)
    return rows[0]


def _undefined(conn: psycopg.Connection[Any], tool: str) -> NoReturn:
    names = [str(r[0]) for r in conn.execute(
        "select tool_name from tenantgate.tool_definitions order by 1").fetchall()]
    known = f" (defined: {', '.join(names)})" if names else " (none is defined yet)"
    fail(f"no tool {tool!r} is defined{known}: declare it in a tools file, review it with "
         "`tenantgate tools check FILE` and apply it with `tenantgate tools apply FILE`")


@app.command(epilog=epilog(
    "tenantgate tools enable acme crm list_tickets",
    "tenantgate tools enable acme crm list_tickets --scope read:tickets --cost 1 --rate-burst 20",
    "tenantgate tools enable acme crm update_ticket_status --approval operator"))
def enable(
    org: OrgArg,
    connector: ConnectorArg,
    tool: ToolArg,
    scope: Annotated[str | None, typer.Option(
        help="Scope a session needs to call it (default: the tool definition's).")] = None,
    cost: Annotated[int | None, typer.Option(
        min=0, help="Credits per call (default: the tool definition's).")] = None,
    side_effect: Annotated[bool | None, typer.Option(
        "--side-effect/--no-side-effect",
        help="Changes data (default: the definition's access is write).")] = None,
    approval: Annotated[Approval | None, typer.Option(
        help="Who approves each call: none, operator (another operator of the org, stored and "
        "decided with `tenantgate approvals`) or host (the session's own operator through the "
        "MCP host; trusts the mediator). Default: the tool definition's.")] = None,
    rate_burst: Annotated[int | None, typer.Option(
        min=1, help="Calls per operator in a burst (default: the tool definition's).")] = None,
    rate_per_second: Annotated[float | None, typer.Option(
        min=0.001, help="Sustained calls per operator per second (default: the definition's).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Shown to the agent.")] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enable a defined tool on a connector, adding it to the catalog or updating its settings.

    Only tools applied with `tenantgate tools apply` can be enabled. A new catalog row takes the
    definition's defaults for every setting not given. Open sessions see the change on their
    next tool call.
    """
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        connector_id = _refs.connector_id(conn, org_id, connector)
        defined = _definition(conn, tool)
        existing = conn.execute(
            "select 1 from tenantgate.tools where org_id = %s and connector_id = %s"
            " and tool_name = %s", (org_id, connector_id, tool)).fetchone()
        try:
            if existing is None:
                conn.execute(
                    "insert into tenantgate.tools (org_id, connector_id, tool_name,"
                    " required_scope, side_effect, credit_cost, description, enabled, approval,"
                    " rate_burst, rate_per_second)"
                    " values (%s, %s, %s, %s, %s, %s, %s, true, %s, %s, %s)",
                    (org_id, connector_id, tool,
                     defined["default_scope"] if scope is None else scope,
                     defined["access"] == "write" if side_effect is None else side_effect,
                     defined["default_cost"] if cost is None else cost,
                     description or "",
                     defined["default_approval"] if approval is None else approval,
                     defined["default_burst"] if rate_burst is None else rate_burst,
                     defined["default_per_second"] if rate_per_second is None
                     else rate_per_second))
            else:
                conn.execute(
                    "update tenantgate.tools set enabled = true,"
                    " required_scope = coalesce(%s, required_scope),"
                    " side_effect = coalesce(%s, side_effect),"
                    " credit_cost = coalesce(%s, credit_cost),"
                    " description = coalesce(%s, description),"
                    " approval = coalesce(%s, approval),"
                    " rate_burst = coalesce(%s, rate_burst),"
                    " rate_per_second = coalesce(%s, rate_per_second)"
                    " where org_id = %s and connector_id = %s and tool_name = %s",
                    (scope, side_effect, cost, description, approval, rate_burst,
                     rate_per_second, org_id, connector_id, tool))
        except pgerrors.ForeignKeyViolation:
            _undefined(conn, tool)  # removed by a `tools apply` that ran meanwhile
        row = fetch_dicts(conn, "select tool_name, required_scope, side_effect, credit_cost,"
                          " approval, rate_burst, rate_per_second, enabled from tenantgate.tools"
                          " where org_id = %s and connector_id = %s and tool_name = %s",
                          (org_id, connector_id, tool))[0]
    emit_record(row, as_json=as_json,
                message=f"enabled {tool} on {connector} (scope {row['required_scope']}, "
                f"cost {row['credit_cost']}, approval {row['approval']}, rate "
                f"{row['rate_burst']} burst / {row['rate_per_second']:g} per second)")


@app.command(epilog=epilog("tenantgate tools disable acme crm update_ticket_status"))
def disable(org: OrgArg, connector: ConnectorArg, tool: ToolArg,
            dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Disable a tool: open sessions lose it on their next call."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        connector_id = _refs.connector_id(conn, org_id, connector)
        cur = conn.execute("update tenantgate.tools set enabled = false where org_id = %s"
                           " and connector_id = %s and tool_name = %s",
                           (org_id, connector_id, tool))
        if cur.rowcount == 0:
            fail(f"no tool {tool!r} on {connector}; list them with "
                 f"`tenantgate tools list {org} {connector}`")
    emit_record({"tool_name": tool, "enabled": False}, as_json=as_json,
                message=f"disabled {tool} on {connector}")


@app.command("list", epilog=epilog("tenantgate tools list acme crm"))
def list_(org: OrgArg, connector: ConnectorArg,
          dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """List a connector's tools: scope, credit cost, side effect, approval, rate limit, enabled."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        connector_id = _refs.connector_id(conn, org_id, connector)
        rows = fetch_dicts(conn, "select tool_name, required_scope, credit_cost, side_effect,"
                           " approval, rate_burst, rate_per_second, enabled, description"
                           " from tenantgate.tools"
                           " where org_id = %s and connector_id = %s order by tool_name",
                           (org_id, connector_id))
    emit_rows(rows, as_json=as_json, title=f"tools of {connector}",
              empty="no tools: tenantgate tools enable ORG CONNECTOR TOOL")


# -- tools files --------------------------------------------------------------------------------

FilesArg = Annotated[list[Path], typer.Argument(
    help="Tools file(s) (YAML). Several files form one set: a tool in none of them is removed "
    "by apply.", show_default=False)]
DbaDsnOption = Annotated[str | None, typer.Option(
    "--dsn",
    help="Database (libpq URL or key=value) as the DBA: a superuser, or the role that ran "
    "`tenantgate db upgrade` (a member of tenantgate_owner and tenantgate_tool). Default: "
    "$TENANTGATE_DSN, then $DATABASE_URL.", show_default=False, envvar="TENANTGATE_DSN")]


def _load(files: list[Path]) -> list[Any]:
    from tenantgate.cli.toolfile.spec import ToolFileError, load

    try:
        return [load(path) for path in files]
    except ToolFileError as exc:
        fail(str(exc))


def _compiled(conn: psycopg.Connection[Any], files: list[Path], step: str) -> Any:
    """Run one step of cli.toolfile.compile; a tools-file problem is one line, exit 1."""
    from tenantgate.cli.citus_ddl import CitusRefusal
    from tenantgate.cli.toolfile import compile as toolfile_compile
    from tenantgate.cli.toolfile.spec import ToolFileError

    loaded = _load(files)
    try:
        if step == "check":
            return toolfile_compile.check(conn, loaded)
        if step == "sql":
            return toolfile_compile.render(conn, loaded)
        return toolfile_compile.apply(conn, loaded)
    except (ToolFileError, CitusRefusal) as exc:
        fail(str(exc))
    except pgerrors.InsufficientPrivilege as exc:
        fail(f"permission denied ({(exc.diag.message_primary or '').strip()}): run `tenantgate "
             f"tools {step}` as the DBA who ran `tenantgate db upgrade` (a superuser, or a member "
             "of tenantgate_owner and tenantgate_tool)")


@app.command(epilog=epilog("tenantgate tools check tools.yaml",
                           "tenantgate tools check tools.yaml more-tools.yaml --json"))
def check(files: FilesArg, dsn: DbaDsnOption = None, as_json: JsonOption = False) -> None:
    """Lint tools files against the database; change nothing.

    Each statement must prepare, touch only enrolled tables, filter on :org_id and :customer_id,
    return only classified columns and write only if the tool says access: write; parameters
    must be bounded and may not name a tenant. Prints one line per tool; exit 1 at the first
    problem, naming it.
    """
    from tenantgate.cli.toolfile import database as toolfile_db

    with connect(dsn) as conn:
        checked = _compiled(conn, files, "check")
        classes = toolfile_db.classified(conn)
    report = [{
        "tool": c.tool.name, "kind": c.tool.kind, "access": c.tool.access,
        "returns": c.tool.returns, "scope": c.tool.catalog.scope, "cost": c.tool.catalog.cost,
        "approval": c.tool.catalog.approval,
        "columns": {name: {"source": source, "class": classes.get(source, "unclassified")}
                    for name, source in c.columns.items()},
    } for c in checked]
    if as_json:
        emit_json(report)
        return
    for r in report:
        columns = ", ".join(f"{name} {col['class']}" for name, col in r["columns"].items())
        if not columns:
            columns = "from its http projection" if r["kind"] == "http" else "none"
        kind = "http" if r["kind"] == "http" else "sql"
        typer.echo(f"OK {r['tool']}: {kind} {r['access']} {r['returns']}, scope {r['scope']}, "
                   f"cost {r['cost']}, approval {r['approval']}; columns: {columns}")
    stderr.print(f"{len(report)} tool{'s' if len(report) != 1 else ''} OK")


@app.command("sql", epilog=epilog("tenantgate tools sql tools.yaml > tools.sql"))
def sql_(files: FilesArg, dsn: DbaDsnOption = None) -> None:
    """Print the SQL that `tenantgate tools apply` would run (after every check); change nothing."""
    with connect(dsn) as conn:
        script = _compiled(conn, files, "sql")
    typer.echo(script, nl=False)


@app.command(epilog=epilog("tenantgate tools apply tools.yaml",
                           "tenantgate tools apply tools.yaml more-tools.yaml --json"))
def apply(files: FilesArg, dsn: DbaDsnOption = None, as_json: JsonOption = False) -> None:
    """Check, then apply tools files in one transaction, as a new recorded version.

    Replaces each tool's database function whole, drops tools no longer in the files (and
    their catalog rows), and records the application in tenantgate.tool_applications.
    Applying the same files again changes no tool and records a new version.
    """
    with connect(dsn) as conn:
        applied = _compiled(conn, files, "apply")
    if as_json:
        emit_json(applied)
        return
    typer.echo(f"applied version {applied['version']}: {len(applied['tools'])} tools "
               f"({', '.join(applied['tools'])}); removed: "
               f"{', '.join(applied['removed']) or 'none'}")
    typer.echo("next: tenantgate tools enable ORG CONNECTOR TOOL (see `tenantgate tools list`)")
