"""`tenantgate approvals`: answer pending approvals of side-effecting tool calls."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantgate.cli import _refs
from tenantgate.cli._common import (
    DsnOption,
    JsonOption,
    connect,
    database_errors,
    emit_record,
    emit_rows,
    epilog,
    fail,
    fetch_dicts,
    resolve_dsn,
)

app = typer.Typer(help="List, approve and deny pending side-effect approvals.",
                  no_args_is_help=True)

OrgArg = Annotated[str, typer.Argument(help="Org name or id.")]
ApprovalArg = Annotated[str, typer.Argument(help="Approval id (from `approvals list`).")]
OperatorOption = Annotated[str, typer.Option(
    help="The deciding operator (email or id): an active operator of the same org, not the "
    "one who requested the call.")]


@app.command("list", epilog=epilog("tenantgate approvals list acme",
                                   "tenantgate approvals list acme --all --json"))
def list_(org: OrgArg,
          all_: Annotated[bool, typer.Option("--all", help="Include answered ones.")] = False,
          dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """List an org's pending approvals: the exact arguments the agent wants to run, next to
    the preview (the target as the session sees it now)."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        rows = fetch_dicts(conn, """
            select a.approval_id, a.tool_name, a.arguments, a.preview, ca.name as customer,
                   op.email as requested_by, a.status, a.created_at, a.expires_at,
                   a.decided_at, dop.email as decided_by, a.session_id
            from tenantgate.approvals a
            left join tenantgate.customer_accounts ca
              on ca.org_id = a.org_id and ca.customer_id = a.customer_id
            left join tenantgate.operators op
              on op.org_id = a.org_id and op.operator_id = a.operator_id
            left join tenantgate.operators dop
              on dop.org_id = a.org_id and dop.operator_id = a.decided_by
            where a.org_id = %(org)s and (%(all)s or a.status = 'pending')
            order by a.created_at""", {"org": org_id, "all": all_})
    emit_rows(rows, as_json=as_json, title=f"approvals of {org}", empty="no pending approvals",
              columns=("approval_id", "tool_name", "arguments", "preview", "customer",
                       "requested_by", "status", "expires_at"))


def _decide(org: str, approval: str, operator: str, approve: bool, dsn: str | None,
            as_json: bool) -> None:
    from tenantgate.mediator.approvals import Approvals, OwnRequest
    from tenantgate.mediator.errors import NotFound

    approval_id = _refs.require_uuid(approval, "APPROVAL")
    target = resolve_dsn(dsn)
    with connect(target) as conn:
        org_id = _refs.org_id(conn, org)
        operator_id = _refs.operator_id(conn, org_id, operator)
    with database_errors():
        try:
            status = Approvals(target).decide(str(org_id), str(approval_id), str(operator_id),
                                              approve)
        except NotFound:
            fail(f"no pending approval {approval} in {org}, or {operator} is not an active "
                 f"operator of it (see `tenantgate approvals list {org}`)")
        except OwnRequest:
            fail(f"{operator} requested this call and cannot decide it (four eyes): another "
                 f"active operator of {org} must run `tenantgate approvals "
                 f"{'approve' if approve else 'deny'} {org} {approval} --operator OTHER`")
    emit_record({"approval_id": approval_id, "status": status}, as_json=as_json,
                message=f"approval {approval_id} {status}"
                + ("; the agent's next identical call runs once" if approve else ""))


@app.command(epilog=epilog(
    "tenantgate approvals approve acme 7d3f6c1e-0a8b-4c1e-9d2f-5b6a7c8d9e0f "
    "--operator ana@acme.example"))
def approve(org: OrgArg, approval: ApprovalArg, operator: OperatorOption,
            dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Approve a pending call: the session's next identical call runs, once."""
    _decide(org, approval, operator, True, dsn, as_json)


@app.command(epilog=epilog(
    "tenantgate approvals deny acme 7d3f6c1e-0a8b-4c1e-9d2f-5b6a7c8d9e0f "
    "--operator ana@acme.example"))
def deny(org: OrgArg, approval: ApprovalArg, operator: OperatorOption,
         dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Deny a pending call: it never runs on this approval."""
    _decide(org, approval, operator, False, dsn, as_json)
