"""Out-of-band approvals: an operator of the same org approves or denies a pending call."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from tenantgate.mediator.errors import MediatorError, NotFound


class OwnRequest(MediatorError):
    """an operator cannot decide their own request: ask another active operator of the org"""


@dataclass(frozen=True, slots=True)
class Approval:
    approval_id: Any
    session_id: Any
    operator_id: Any
    customer_id: Any
    tool_name: str
    arguments: dict[str, Any]
    status: str
    created_at: dt.datetime


class Approvals:
    """The admin-side API (tenantgate_admin); the CLI calls the same functions.

    Four eyes: the database lets an active operator of the same org decide, never the operator
    whose session asked (OwnRequest).
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    def pending(self, org_id: str) -> list[Approval]:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            cur = conn.cursor(row_factory=class_row(Approval))
            return cur.execute(
                "select approval_id, session_id, operator_id, customer_id, tool_name, arguments,"
                " status, created_at from tenantgate.approvals"
                " where org_id = %s and status = 'pending' order by created_at",
                (org_id,),
            ).fetchall()

    def decide(self, org_id: str, approval_id: str, operator_id: str, approve: bool) -> str:
        """Approve or deny; the approved call then runs once, on its next identical call."""
        try:
            with psycopg.connect(self._dsn, autocommit=True) as conn:
                row = conn.execute(
                    "select tenantgate.approval_decide(%s, %s, %s, %s)",
                    (org_id, approval_id, operator_id, approve),
                ).fetchone()
        except psycopg.errors.NoDataFound:
            raise NotFound() from None
        except psycopg.errors.InsufficientPrivilege as exc:
            # four eyes: tenantgate.approval_decide refuses the requester (42501)
            if "own request" in (exc.diag.message_primary or ""):
                raise OwnRequest() from None
            raise
        return str(row[0]) if row else ""

    def approve(self, org_id: str, approval_id: str, operator_id: str) -> str:
        return self.decide(org_id, approval_id, operator_id, True)

    def deny(self, org_id: str, approval_id: str, operator_id: str) -> str:
        return self.decide(org_id, approval_id, operator_id, False)
