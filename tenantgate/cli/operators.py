"""`tenantgate operator`: the people of an org on whose behalf the agent acts."""

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

app = typer.Typer(help="Add, disable and list operators (an org's CS staff).",
                  no_args_is_help=True)

OrgArg = Annotated[str, typer.Argument(help="Org name or id.")]


@app.command(epilog=epilog("tenantgate operator add acme ana@acme.example --name 'Ana Diaz'"))
def add(
    org: OrgArg,
    email: Annotated[str, typer.Argument(help="The operator's email (unique in the org).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add an operator to an org."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        row = conn.execute(
            "insert into tenantgate.operators (org_id, email, display_name) values (%s, %s, %s)"
            " returning operator_id", (org_id, email, name)).fetchone()
    assert row is not None
    emit_record({"org_id": org_id, "operator_id": row[0], "email": email}, as_json=as_json,
                message=f"added operator {email} ({row[0]}) to {org}")


def _set_status(org: str, operator: str, status: str, dsn: str | None, as_json: bool) -> None:
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        operator_id = _refs.operator_id(conn, org_id, operator)
        conn.execute("update tenantgate.operators set status = %s"
                     " where org_id = %s and operator_id = %s", (status, org_id, operator_id))
    emit_record({"org_id": org_id, "operator_id": operator_id, "status": status},
                as_json=as_json,
                message=f"operator {operator} is {status}"
                + (": their sessions fail on the next tool call" if status != "active" else ""))


@app.command(epilog=epilog("tenantgate operator disable acme ana@acme.example"))
def disable(org: OrgArg,
            operator: Annotated[str, typer.Argument(help="Operator email or id.")],
            dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Disable an operator: their open sessions fail on the next tool call."""
    _set_status(org, operator, "disabled", dsn, as_json)


@app.command(epilog=epilog("tenantgate operator enable acme ana@acme.example"))
def enable(org: OrgArg,
           operator: Annotated[str, typer.Argument(help="Operator email or id.")],
           dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Enable a disabled operator again."""
    _set_status(org, operator, "active", dsn, as_json)


@app.command("list", epilog=epilog("tenantgate operator list acme --json"))
def list_(org: OrgArg, dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """List an org's operators."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        rows = fetch_dicts(conn, "select operator_id, email, display_name, status, created_at"
                           " from tenantgate.operators where org_id = %s order by email",
                           (org_id,))
    emit_rows(rows, as_json=as_json, title=f"operators of {org}",
              empty="no operators: tenantgate operator add ORG EMAIL")
