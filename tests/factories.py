"""Build tenants, sessions and demo rows in a test database, the way an operator would."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Jsonb

from tests.pg import TestDatabase

DEMO_TOOLS = (
    # tool_name, required_scope, side_effect, credit_cost
    ("get_customer_profile", "read:profile", False, 1),
    ("list_tickets", "read:tickets", False, 1),
    ("update_ticket_status", "write:tickets", True, 2),
)
ENROLLED_TABLES = ("demo.customer_profiles", "demo.tickets", "demo.invoices", "demo.subscriptions")


@dataclass(frozen=True)
class Tenant:
    """One customer account of one org, reached through one connector by one operator."""

    org_id: uuid.UUID
    operator_id: uuid.UUID
    connector_id: uuid.UUID
    customer_id: uuid.UUID


@dataclass(frozen=True)
class Session:
    """A live session and the secret its token would carry."""

    tenant: Tenant
    session_id: uuid.UUID
    secret: str
    scopes: tuple[str, ...] = field(default=())


def add_org(db: TestDatabase, name: str | None = None, credits: int = 0) -> uuid.UUID:
    with db.connect("tenantgate_admin") as conn:
        row = conn.execute(
            "insert into tenantgate.orgs (name) values (%s) returning org_id",
            (name or f"org-{secrets.token_hex(4)}",),
        ).fetchone()
        assert row is not None
        org_id: uuid.UUID = row[0]
        # Committed first: on Citus the definer function below reaches the workers over its own
        # connections (as tenantgate_owner), which see only committed rows of tenantgate.orgs.
        conn.commit()
        if credits:
            conn.execute(
                "select tenantgate.grant_credits(%s, %s, %s)", (org_id, credits, f"seed-{org_id}")
            )
    return org_id


def add_operator(db: TestDatabase, org_id: uuid.UUID) -> uuid.UUID:
    with db.connect("tenantgate_admin") as conn:
        row = conn.execute(
            "insert into tenantgate.operators (org_id, email) values (%s, %s)"
            " returning operator_id",
            (org_id, f"csm-{secrets.token_hex(4)}@example.com"),
        ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def add_connector(
    db: TestDatabase, org_id: uuid.UUID, tools: tuple[tuple[str, str, bool, int], ...] = DEMO_TOOLS
) -> uuid.UUID:
    with db.connect("tenantgate_admin") as conn:
        row = conn.execute(
            "insert into tenantgate.connectors (org_id, name) values (%s, %s)"
            " returning connector_id",
            (org_id, f"crm-{secrets.token_hex(4)}"),
        ).fetchone()
        assert row is not None
        connector_id: uuid.UUID = row[0]
        for name, scope, side_effect, cost in tools:
            # Side effects wait for another operator's approval, as `tenantgate tools enable`
            # copies from the demo tools file.
            conn.execute(
                "insert into tenantgate.tools (org_id, connector_id, tool_name, required_scope,"
                " side_effect, credit_cost, approval) values (%s, %s, %s, %s, %s, %s, %s)",
                (org_id, connector_id, name, scope, side_effect, cost,
                 "operator" if side_effect else "none"),
            )
    return connector_id


def add_customer(db: TestDatabase, org_id: uuid.UUID, connector_id: uuid.UUID) -> uuid.UUID:
    with db.connect("tenantgate_admin") as conn:
        row = conn.execute(
            "insert into tenantgate.customer_accounts (org_id, connector_id, name)"
            " values (%s, %s, %s) returning customer_id",
            (org_id, connector_id, f"customer-{secrets.token_hex(4)}"),
        ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def add_tenant(db: TestDatabase, credits: int = 0) -> Tenant:
    """A fresh org with one operator, one connector (demo tools) and one customer."""
    org_id = add_org(db, credits=credits)
    connector_id = add_connector(db, org_id)
    return Tenant(
        org_id, add_operator(db, org_id), connector_id, add_customer(db, org_id, connector_id)
    )


def open_session(
    db: TestDatabase,
    tenant: Tenant,
    scopes: tuple[str, ...] = ("read:profile", "read:tickets"),
    ttl: str = "15 minutes",
) -> Session:
    """Open a session as the session manager does: only sha256(secret) reaches the database."""
    secret = secrets.token_urlsafe(32)
    with db.connect("tenantgate_session_manager") as conn:
        row = conn.execute(
            "select session_id from tenantgate.open_session(%s, %s, %s, %s, %s, %s::interval, %s)",
            (
                tenant.org_id,
                tenant.operator_id,
                tenant.connector_id,
                tenant.customer_id,
                list(scopes),
                ttl,
                hashlib.sha256(secret.encode()).digest(),
            ),
        ).fetchone()
    assert row is not None
    return Session(tenant, row[0], secret, scopes)


def set_context(
    conn: psycopg.Connection[tuple],
    org_id: object,
    customer_id: object,  # type: ignore[type-arg]
    secret: str,
) -> None:
    """Set the three transaction-local settings the mediator sets (inside a transaction)."""
    conn.execute(
        "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true),"
        " set_config('app.session_secret', %s, true)",
        (str(org_id), str(customer_id), secret),
    )


@contextlib.contextmanager
def as_session(db: TestDatabase, session: Session) -> Iterator[psycopg.Connection[tuple]]:  # type: ignore[type-arg]
    """A mediator connection inside one transaction carrying the session's context.

    What a compromised mediator process holds: its credential and one live secret. It reads no
    enrolled table (permission denied); tenant rows reach it only through tenantgate.call_tool.
    """
    with db.connect("tenantgate_mediator") as conn, conn.transaction():
        set_context(conn, session.tenant.org_id, session.tenant.customer_id, session.secret)
        yield conn


@contextlib.contextmanager
def as_tool_role(db: TestDatabase, session: Session) -> Iterator[psycopg.Connection[tuple]]:  # type: ignore[type-arg]
    """The role the gate's tool functions run as (tenantgate_tool), with the session's context.

    The only role holding privileges on enrolled tables; their isolation policy holds it to the
    (org, customer) the gate set. Only call_tool (after verifying the session) and the DBA can
    act as it, so a wrong secret is tested through call_tool, not here.
    """
    with db.connect() as conn, conn.transaction():
        conn.execute("set local role tenantgate_tool")
        set_context(conn, session.tenant.org_id, session.tenant.customer_id, session.secret)
        yield conn


@contextlib.contextmanager
def as_gate(db: TestDatabase, session: Session) -> Iterator[psycopg.Connection[tuple]]:  # type: ignore[type-arg]
    """A superuser connection with the session's context: the gate's internal functions
    (spend_credits, append_audit, trust_check) are no longer the mediator's to call, and they
    still verify the context from the settings."""
    with db.connect() as conn, conn.transaction():
        set_context(conn, session.tenant.org_id, session.tenant.customer_id, session.secret)
        yield conn


def call_tool(
    db: TestDatabase,
    session: Session,
    tool: str,
    args: dict[str, object] | None = None,
    request_key: str | None = None,
    secret: str | None = None,
) -> dict[str, object]:
    """One tools/call exactly as the mediator makes it: one autocommit statement of
    tenantgate.call_tool (on Citus that is what gets delegated to the org's worker)."""
    with db.connect("tenantgate_mediator", autocommit=True) as conn:
        row = conn.execute(
            "select tenantgate.call_tool(%s, %s, %s, %s, %s, %s)",
            (
                session.tenant.org_id,
                session.tenant.customer_id,
                session.secret if secret is None else secret,
                request_key,
                tool,
                Jsonb(args or {}),
            ),
        ).fetchone()
    assert row is not None
    answer: dict[str, object] = row[0]
    return answer


def seed_demo_rows(db: TestDatabase, tenant: Tenant, tickets: int = 2, invoices: int = 2) -> None:
    """Rows in every demo table for one customer (as the superuser, who bypasses RLS)."""
    tag = secrets.token_hex(3)
    with db.connect() as conn:
        conn.execute(
            "insert into demo.customer_profiles"
            " (org_id, customer_id, full_name, email, phone, company)"
            " values (%s, %s, %s, %s, %s, %s)",
            (
                tenant.org_id,
                tenant.customer_id,
                f"Person {tag}",
                f"p-{tag}@example.com",
                "+49 30 1234567",
                f"Company {tag}",
            ),
        )
        for i in range(tickets):
            conn.execute(
                "insert into demo.tickets (org_id, customer_id, subject) values (%s, %s, %s)",
                (tenant.org_id, tenant.customer_id, f"ticket {i} of {tag}"),
            )
        for i in range(invoices):
            conn.execute(
                "insert into demo.invoices (org_id, customer_id, number, amount_cents, due_on)"
                " values (%s, %s, %s, %s, current_date + 30)",
                (tenant.org_id, tenant.customer_id, f"INV-{tag}-{i}", 1000 * (i + 1)),
            )
        conn.execute(
            "insert into demo.subscriptions (org_id, customer_id, plan, renews_on)"
            " values (%s, %s, 'pro', current_date + 90)",
            (tenant.org_id, tenant.customer_id),
        )
