"""`tenantgate customer`: the customer accounts an org's agent acts for, one at a time."""

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

app = typer.Typer(help="Add, pause, resume, revoke and list customer accounts.",
                  no_args_is_help=True)

OrgArg = Annotated[str, typer.Argument(help="Org name or id.")]
CustomerArg = Annotated[str, typer.Argument(help="Customer name, external reference or id.")]


@app.command(epilog=epilog("tenantgate customer add acme crm 'Globex GmbH' --external-ref GX-1001"))
def add(
    org: OrgArg,
    connector: Annotated[str, typer.Argument(
        help="Connector name or id the customer is reached through.")],
    name: Annotated[str, typer.Argument(help="Customer name.")],
    external_ref: Annotated[str | None, typer.Option(help="The customer's id upstream.")] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a customer account reached through one of the org's connectors."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        connector_id = _refs.connector_id(conn, org_id, connector)
        row = conn.execute(
            "insert into tenantgate.customer_accounts (org_id, connector_id, name, external_ref)"
            " values (%s, %s, %s, %s) returning customer_id",
            (org_id, connector_id, name, external_ref)).fetchone()
    assert row is not None
    emit_record({"org_id": org_id, "connector_id": connector_id, "customer_id": row[0],
                 "name": name}, as_json=as_json, message=f"added customer {name} ({row[0]})")


def _set_status(org: str, customer: str, status: str, dsn: str | None, as_json: bool) -> None:
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        customer_id = _refs.customer_id(conn, org_id, customer)
        conn.execute("update tenantgate.customer_accounts set status = %s"
                     " where org_id = %s and customer_id = %s", (status, org_id, customer_id))
    emit_record({"org_id": org_id, "customer_id": customer_id, "status": status},
                as_json=as_json,
                message=f"customer {customer} is {status}"
                + (": every open session for it fails on its next tool call"
                   if status != "active" else ""))


@app.command(epilog=epilog("tenantgate customer pause acme 'Globex GmbH'"))
def pause(org: OrgArg, customer: CustomerArg,
          dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Pause a customer: every open session for it fails on its next tool call."""
    _set_status(org, customer, "paused", dsn, as_json)


@app.command(epilog=epilog("tenantgate customer resume acme 'Globex GmbH'"))
def resume(org: OrgArg, customer: CustomerArg,
           dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Resume a paused customer."""
    _set_status(org, customer, "active", dsn, as_json)


@app.command(epilog=epilog("tenantgate customer revoke acme GX-1001"))
def revoke(org: OrgArg, customer: CustomerArg,
           dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Revoke a customer for good: its sessions fail at once and no new one opens."""
    _set_status(org, customer, "revoked", dsn, as_json)


@app.command("list", epilog=epilog("tenantgate customer list acme --connector crm"))
def list_(org: OrgArg,
          connector: Annotated[str | None, typer.Option(help="Only this connector.")] = None,
          dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """List an org's customer accounts."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        connector_id = _refs.connector_id(conn, org_id, connector) if connector else None
        rows = fetch_dicts(conn, """
            select ca.customer_id, ca.name, ca.external_ref, c.name as connector, ca.status,
                   ca.created_at
            from tenantgate.customer_accounts ca
            join tenantgate.connectors c
              on c.org_id = ca.org_id and c.connector_id = ca.connector_id
            where ca.org_id = %(org)s
              and (%(conn)s::uuid is null or ca.connector_id = %(conn)s)
            order by ca.name""", {"org": org_id, "conn": connector_id})
    emit_rows(rows, as_json=as_json, title=f"customers of {org}",
              empty="no customers: tenantgate customer add ORG CONNECTOR NAME")
