"""`tenantgate org`: the tenants of tenantgate."""

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

app = typer.Typer(help="Add and list orgs (the tenants of tenantgate).", no_args_is_help=True)


@app.command(epilog=epilog("tenantgate org add acme", "tenantgate org add acme --credits 1000"))
def add(
    name: Annotated[str, typer.Argument(help="Unique org name.")],
    credits: Annotated[int, typer.Option(min=0, help="Credits to grant right away.")] = 0,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add an org, optionally with a first credit grant."""
    with connect(dsn, autocommit=False) as conn:
        row = conn.execute("insert into tenantgate.orgs (name) values (%s) returning org_id",
                           (name,)).fetchone()
        assert row is not None
        org_id = row[0]
        if credits:
            conn.execute("select tenantgate.grant_credits(%s, %s, %s)",
                         (org_id, credits, f"org-add-{org_id}"))
        conn.commit()
    emit_record({"org_id": org_id, "name": name, "credits": credits}, as_json=as_json,
                message=f"added org {name} ({org_id})")


@app.command("list", epilog=epilog("tenantgate org list", "tenantgate org list --json"))
def list_(dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """List orgs with their status, credit balance and counts."""
    with connect(dsn) as conn:
        rows = fetch_dicts(conn, """
            select o.org_id, o.name, o.status, coalesce(a.balance, 0) as credits,
                   (select count(*) from tenantgate.operators p where p.org_id = o.org_id)
                     as operators,
                   (select count(*) from tenantgate.connectors c where c.org_id = o.org_id)
                     as connectors,
                   (select count(*) from tenantgate.customer_accounts c where c.org_id = o.org_id)
                     as customers,
                   o.created_at
            from tenantgate.orgs o
            left join tenantgate.credit_accounts a on a.org_id = o.org_id
            order by o.name""")
    emit_rows(rows, as_json=as_json, title="orgs", empty="no orgs yet: tenantgate org add NAME")


def _set_status(org: str, status: str, dsn: str | None, as_json: bool) -> None:
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        conn.execute("update tenantgate.orgs set status = %s where org_id = %s", (status, org_id))
    emit_record({"org_id": org_id, "status": status}, as_json=as_json,
                message=f"org {org} is {status}: its sessions fail on their next tool call"
                if status != "active" else f"org {org} is active")


@app.command(epilog=epilog("tenantgate org pause acme"))
def pause(org: Annotated[str, typer.Argument(help="Org name or id.")],
          dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Pause an org: every open session of it fails on its next tool call."""
    _set_status(org, "paused", dsn, as_json)


@app.command(epilog=epilog("tenantgate org resume acme"))
def resume(org: Annotated[str, typer.Argument(help="Org name or id.")],
           dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Resume a paused org."""
    _set_status(org, "active", dsn, as_json)
