"""`tenantgate credits`: grant credits to an org, show balances, read the ledger."""

from __future__ import annotations

import uuid
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

app = typer.Typer(help="Grant credits, show balances, read the spend ledger.",
                  no_args_is_help=True)

OrgArg = Annotated[str, typer.Argument(help="Org name or id.")]


@app.command("grant", epilog=epilog(
    "tenantgate credits grant acme 1000",
    "tenantgate credits grant acme 1000 --request-id invoice-2026-11  # safe to retry"))
def grant(
    org: OrgArg,
    amount: Annotated[int, typer.Argument(min=1, help="Credits to add.")],
    request_id: Annotated[str | None, typer.Option(
        help="Idempotency key: the same id grants once, however often it is run.")] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add credits to an org (once per request id) and print the new balance."""
    rid = request_id or f"cli-{uuid.uuid4()}"
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        row = conn.execute("select tenantgate.grant_credits(%s, %s, %s)",
                           (org_id, amount, rid)).fetchone()
    balance = row[0] if row else None
    emit_record({"org_id": org_id, "amount": amount, "request_id": rid, "balance": balance},
                as_json=as_json, message=f"{org}: balance {balance} (request id {rid})")


@app.command(epilog=epilog("tenantgate credits show", "tenantgate credits show acme --json"))
def show(org: Annotated[str | None, typer.Argument(help="Org name or id (default: all).")
                        ] = None,
         dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Show credit balances."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org) if org else None
        rows = fetch_dicts(conn, """
            select o.name as org, o.org_id, coalesce(a.balance, 0) as balance, a.updated_at
            from tenantgate.orgs o left join tenantgate.credit_accounts a on a.org_id = o.org_id
            where %(org)s::uuid is null or o.org_id = %(org)s
            order by o.name""", {"org": org_id})
    emit_rows(rows, as_json=as_json, title="credits")


@app.command(epilog=epilog("tenantgate credits ledger acme --limit 20"))
def ledger(org: OrgArg,
           limit: Annotated[int, typer.Option(min=1, help="Newest entries to show.")] = 50,
           dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Show an org's newest ledger entries: grants, charges and refusals."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        rows = fetch_dicts(conn, """
            select entry_id, created_at, kind, amount, outcome, balance_after, tool_name,
                   request_id, session_id
            from tenantgate.credit_ledger where org_id = %s
            order by entry_id desc limit %s""", (org_id, limit))
    emit_rows(rows, as_json=as_json, title=f"ledger of {org}", empty="no ledger entries")
