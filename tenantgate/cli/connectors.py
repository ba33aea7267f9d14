"""`tenantgate connector`: an org's integrations with upstream systems."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantgate.cli import _refs
from tenantgate.cli._common import (
    DsnOption,
    JsonOption,
    connect,
    emit_record,
    emit_rows,
    epilog,
    fetch_dicts,
)

app = typer.Typer(help="Add, pause, resume and list connectors (an org's upstream systems).",
                  no_args_is_help=True)

OrgArg = Annotated[str, typer.Argument(help="Org name or id.")]
ConnectorArg = Annotated[str, typer.Argument(help="Connector name or id.")]


@app.command(epilog=epilog(
    "tenantgate connector add acme crm",
    "tenantgate connector add acme billing --base-url https://billing.example "
    "--auth-header X-Api-Key"))
def add(
    org: OrgArg,
    name: Annotated[str, typer.Argument(help="Connector name (unique in the org).")],
    base_url: Annotated[str | None, typer.Option(help="Upstream HTTP API base URL.")] = None,
    auth_header: Annotated[str, typer.Option(help="Header the customer's API key goes in.")
                           ] = "Authorization",
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a connector to an org."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        row = conn.execute(
            "insert into tenantgate.connectors (org_id, name, base_url, auth_header)"
            " values (%s, %s, %s, %s) returning connector_id",
            (org_id, name, base_url, auth_header)).fetchone()
    assert row is not None
    emit_record({"org_id": org_id, "connector_id": row[0], "name": name}, as_json=as_json,
                message=f"added connector {name} ({row[0]}) to {org}")


def _set_status(org: str, connector: str, status: str, dsn: str | None, as_json: bool) -> None:
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        connector_id = _refs.connector_id(conn, org_id, connector)
        conn.execute("update tenantgate.connectors set status = %s"
                     " where org_id = %s and connector_id = %s", (status, org_id, connector_id))
    emit_record({"org_id": org_id, "connector_id": connector_id, "status": status},
                as_json=as_json,
                message=f"connector {connector} is {status}"
                + (": its sessions fail on their next tool call" if status != "active" else ""))


@app.command(epilog=epilog("tenantgate connector pause acme crm"))
def pause(org: OrgArg, connector: ConnectorArg,
          dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Pause a connector: every open session through it fails on its next tool call."""
    _set_status(org, connector, "paused", dsn, as_json)


@app.command(epilog=epilog("tenantgate connector resume acme crm"))
def resume(org: OrgArg, connector: ConnectorArg,
           dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Resume a paused connector."""
    _set_status(org, connector, "active", dsn, as_json)


@app.command("list", epilog=epilog("tenantgate connector list acme", "tenantgate connector list"))
def list_(org: Annotated[str | None, typer.Argument(help="Org name or id (default: all).")
                         ] = None,
          dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """List connectors (of one org, or all)."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org) if org else None
        rows = fetch_dicts(conn, """
            select o.name as org, c.connector_id, c.name, c.status, c.base_url, c.auth_header,
                   (select count(*) from tenantgate.tools t
                     where t.org_id = c.org_id and t.connector_id = c.connector_id and t.enabled)
                     as tools_enabled
            from tenantgate.connectors c join tenantgate.orgs o on o.org_id = c.org_id
            where %(org)s::uuid is null or c.org_id = %(org)s
            order by o.name, c.name""", {"org": org_id})
    emit_rows(rows, as_json=as_json, title="connectors",
              empty="no connectors: tenantgate connector add ORG NAME")
