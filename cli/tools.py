"""`tenantgate tools`: the per-connector tool catalog (scope, cost, side effect)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import _refs
from cli._common import (
    DsnOption,
    JsonOption,
    connect,
    emit_record,
    emit_rows,
    epilog,
    fail,
    fetch_dicts,
)

app = typer.Typer(help="Enable, disable and list a connector's tools.", no_args_is_help=True)

OrgArg = Annotated[str, typer.Argument(help="Org name or id.")]
ConnectorArg = Annotated[str, typer.Argument(help="Connector name or id.")]
ToolArg = Annotated[str, typer.Argument(help="Tool name, e.g. list_tickets.")]


@app.command(epilog=epilog(
    "tenantgate tools enable acme crm list_tickets --scope read:tickets --cost 1",
    "tenantgate tools enable acme crm update_ticket_status --scope write:tickets --cost 2 "
    "--side-effect"))
def enable(
    org: OrgArg,
    connector: ConnectorArg,
    tool: ToolArg,
    scope: Annotated[str | None, typer.Option(
        help="Scope a session needs to call it (required when the tool is new).")] = None,
    cost: Annotated[int | None, typer.Option(min=0, help="Credits per call (default 1).")
                    ] = None,
    side_effect: Annotated[bool | None, typer.Option(
        "--side-effect/--no-side-effect",
        help="Changes data: each call needs a human approval.")] = None,
    description: Annotated[str | None, typer.Option(help="Shown to the agent.")] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enable a tool on a connector, adding it to the catalog or updating its settings.

    Open sessions see the change on their next tool call.
    """
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        connector_id = _refs.connector_id(conn, org_id, connector)
        existing = conn.execute(
            "select 1 from tenantgate.tools where org_id = %s and connector_id = %s"
            " and tool_name = %s", (org_id, connector_id, tool)).fetchone()
        if existing is None:
            if scope is None:
                fail(f"tool {tool!r} is new: give its --scope (e.g. --scope read:tickets)", 2)
            conn.execute(
                "insert into tenantgate.tools (org_id, connector_id, tool_name, required_scope,"
                " side_effect, credit_cost, description, enabled)"
                " values (%s, %s, %s, %s, %s, %s, %s, true)",
                (org_id, connector_id, tool, scope, bool(side_effect),
                 1 if cost is None else cost, description or ""))
        else:
            conn.execute(
                "update tenantgate.tools set enabled = true,"
                " required_scope = coalesce(%s, required_scope),"
                " side_effect = coalesce(%s, side_effect),"
                " credit_cost = coalesce(%s, credit_cost),"
                " description = coalesce(%s, description)"
                " where org_id = %s and connector_id = %s and tool_name = %s",
                (scope, side_effect, cost, description, org_id, connector_id, tool))
        row = fetch_dicts(conn, "select tool_name, required_scope, side_effect, credit_cost,"
                          " enabled from tenantgate.tools where org_id = %s"
                          " and connector_id = %s and tool_name = %s",
                          (org_id, connector_id, tool))[0]
    emit_record(row, as_json=as_json,
                message=f"enabled {tool} on {connector} (scope {row['required_scope']}, "
                f"cost {row['credit_cost']}, side effect {'yes' if row['side_effect'] else 'no'})")


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
    """List a connector's tools: scope, credit cost, side effect, enabled."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        connector_id = _refs.connector_id(conn, org_id, connector)
        rows = fetch_dicts(conn, "select tool_name, required_scope, credit_cost, side_effect,"
                           " enabled, description from tenantgate.tools"
                           " where org_id = %s and connector_id = %s order by tool_name",
                           (org_id, connector_id))
    emit_rows(rows, as_json=as_json, title=f"tools of {connector}",
              empty="no tools: tenantgate tools enable ORG CONNECTOR TOOL --scope SCOPE")
