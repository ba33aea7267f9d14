"""Name-or-id arguments: orgs by name, operators by email, connectors and customers by name."""

from __future__ import annotations

import uuid
from typing import Any, LiteralString

import psycopg

from tenantgate.cli._common import fail


def _as_uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


def _one(conn: psycopg.Connection[Any], query: LiteralString, params: tuple[Any, ...],
         what: str, ref: str, hint: str) -> uuid.UUID:
    rows = conn.execute(query, params).fetchall()
    if not rows:
        fail(f"no {what} {ref!r}; {hint}")
    if len(rows) > 1:
        fail(f"{what} {ref!r} is ambiguous; use its id")
    value: uuid.UUID = rows[0][0]
    return value


def org_id(conn: psycopg.Connection[Any], ref: str) -> uuid.UUID:
    """An org by id or name."""
    return _one(conn, "select org_id from tenantgate.orgs where org_id::text = %s or name = %s",
                (str(_as_uuid(ref) or ""), ref), "org", ref, "list them with `tenantgate org list`")


def operator_id(conn: psycopg.Connection[Any], org: uuid.UUID, ref: str) -> uuid.UUID:
    """An operator of `org` by id or email."""
    return _one(conn, "select operator_id from tenantgate.operators"
                " where org_id = %s and (operator_id::text = %s or email = %s)",
                (org, str(_as_uuid(ref) or ""), ref), "operator", ref,
                "list them with `tenantgate operator list ORG`")


def connector_id(conn: psycopg.Connection[Any], org: uuid.UUID, ref: str) -> uuid.UUID:
    """A connector of `org` by id or name."""
    return _one(conn, "select connector_id from tenantgate.connectors"
                " where org_id = %s and (connector_id::text = %s or name = %s)",
                (org, str(_as_uuid(ref) or ""), ref), "connector", ref,
                "list them with `tenantgate connector list ORG`")


def customer_id(conn: psycopg.Connection[Any], org: uuid.UUID, ref: str) -> uuid.UUID:
    """A customer account of `org` by id, name or external reference."""
    return _one(conn, "select customer_id from tenantgate.customer_accounts"
                " where org_id = %s and (customer_id::text = %s or name = %s or external_ref = %s)",
                (org, str(_as_uuid(ref) or ""), ref, ref), "customer", ref,
                "list them with `tenantgate customer list ORG`")


def require_uuid(ref: str, what: str) -> uuid.UUID:
    """A uuid argument, or a one-line usage error."""
    value = _as_uuid(ref)
    if value is None:
        fail(f"{what} must be an id (uuid), got {ref!r}", 2)
    return value
