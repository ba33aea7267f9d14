"""Demo world for tests and `tenantgate demo`: two orgs, customers Acme and Beta, tools, credits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import psycopg

# (tool, required scope, side effect, credit cost)
CATALOG: list[tuple[str, str, bool, int]] = [
    ("get_customer_profile", "read:profile", False, 1),
    ("list_tickets", "read:tickets", False, 1),
    ("search_tickets", "read:tickets", False, 1),
    ("list_invoices", "read:billing", False, 1),
    ("get_subscription", "read:billing", False, 1),
    ("account_health", "read:health", False, 2),
    ("update_ticket_status", "write:tickets", True, 1),
    ("issue_refund", "write:refunds", True, 5),
]
READ_SCOPES = ["read:profile", "read:tickets", "read:billing", "read:health"]
ALL_SCOPES = [*READ_SCOPES, "read:pii", "write:tickets", "write:refunds"]


@dataclass
class Customer:
    name: str
    customer_id: str
    ticket_ids: list[int] = field(default_factory=list)
    invoice_ids: list[int] = field(default_factory=list)


@dataclass
class Org:
    name: str
    org_id: str
    operator_id: str
    second_operator_id: str
    connector_id: str
    customers: dict[str, Customer] = field(default_factory=dict)


@dataclass
class World:
    orgs: dict[str, Org]

    @property
    def northwind(self) -> Org:
        return self.orgs["Northwind"]

    @property
    def globex(self) -> Org:
        return self.orgs["Globex"]


def _one(conn: psycopg.Connection[Any], query: Any, params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def seed(
    superuser_dsn: str,
    *,
    credits: int = 1000,
    rate_burst: int | None = None,
    rate_per_second: float | None = None,
) -> World:
    """Create the demo world (as a superuser: demo tables are under forced RLS)."""
    orgs: dict[str, Org] = {}
    today = dt.date.today()
    with psycopg.connect(superuser_dsn, autocommit=False) as conn:
        for org_name, customers in (("Northwind", ("Acme", "Beta")), ("Globex", ("Gamma",))):
            org_id = str(
                _one(
                    conn,
                    "insert into tenantgate.orgs (name) values (%s) returning org_id",
                    (org_name,),
                )
            )
            ops = [
                str(
                    _one(
                        conn,
                        "insert into tenantgate.operators (org_id, email, display_name)"
                        " values (%s, %s, %s) returning operator_id",
                        (org_id, f"{who}@{org_name.lower()}.example", who),
                    )
                )
                for who in ("csm", "lead")
            ]
            conn_id = str(
                _one(
                    conn,
                    "insert into tenantgate.connectors (org_id, name)"
                    " values (%s, 'product-db') returning connector_id",
                    (org_id,),
                )
            )
            for tool, scope, side, cost in CATALOG:
                # approval policy and rate limit: the tools file's defaults (tools/demo.yaml)
                conn.execute(
                    "insert into tenantgate.tools (org_id, connector_id, tool_name,"
                    " required_scope, side_effect, credit_cost, approval, rate_burst,"
                    " rate_per_second)"
                    " select %s, %s, d.tool_name, %s, %s, %s, d.default_approval,"
                    " coalesce(%s, d.default_burst), coalesce(%s, d.default_per_second)"
                    " from tenantgate.tool_definitions d where d.tool_name = %s",
                    (org_id, conn_id, scope, side, cost, rate_burst, rate_per_second, tool),
                )
            org = Org(org_name, org_id, ops[0], ops[1], conn_id)
            for cname in customers:
                cid = str(
                    _one(
                        conn,
                        "insert into tenantgate.customer_accounts (org_id, connector_id,"
                        " name) values (%s, %s, %s) returning customer_id",
                        (org_id, conn_id, cname),
                    )
                )
                cust = Customer(cname, cid)
                low = cname.lower()
                conn.execute(
                    "insert into demo.customer_profiles (org_id, customer_id, full_name, email,"
                    " phone, company, country, notes) values (%s,%s,%s,%s,%s,%s,%s,%s)",
                    (
                        org_id,
                        cid,
                        f"{cname} Admin",
                        f"admin@{low}.example",
                        "+1-555-0100",
                        f"{cname} Inc",
                        "DE",
                        f"internal notes about {cname}",
                    ),
                )
                for i, (subject, status) in enumerate(
                    (
                        (f"{cname}: login fails", "open"),
                        (f"{cname}: invoice question", "pending"),
                        (f"{cname}: export broken", "solved"),
                    )
                ):
                    cust.ticket_ids.append(
                        _one(
                            conn,
                            "insert into demo.tickets (org_id, customer_id, subject, body, status)"
                            " values (%s,%s,%s,%s,%s) returning ticket_id",
                            (org_id, cid, subject, f"body {i}", status),
                        )
                    )
                for n, (cents, status, due) in enumerate(
                    (
                        (12000, "paid", today - dt.timedelta(days=40)),
                        (9900, "overdue", today - dt.timedelta(days=10)),
                        (4500, "open", today + dt.timedelta(days=20)),
                    )
                ):
                    cust.invoice_ids.append(
                        _one(
                            conn,
                            "insert into demo.invoices (org_id, customer_id, number,"
                            " amount_cents, status, issued_on, due_on)"
                            " values (%s,%s,%s,%s,%s,%s,%s) returning invoice_id",
                            (
                                org_id,
                                cid,
                                f"{cname[:2].upper()}-{n + 1:04d}",
                                cents,
                                status,
                                due - dt.timedelta(days=30),
                                due,
                            ),
                        )
                    )
                conn.execute(
                    "insert into demo.subscriptions (org_id, customer_id, plan, seats,"
                    " monthly_cents, renews_on) values (%s,%s,%s,%s,%s,%s)",
                    (
                        org_id,
                        cid,
                        "business" if cname != "Beta" else "starter",
                        12,
                        49900,
                        today + dt.timedelta(days=90),
                    ),
                )
                org.customers[cname] = cust
            orgs[org_name] = org
        conn.commit()
        # After the rows are committed: on Citus the definer function writes the org's placements
        # as tenantgate_owner, which may not share a transaction with the superuser's inserts.
        for org in orgs.values():
            conn.execute(
                "select tenantgate.grant_credits(%s, %s, 'demo-seed')", (org.org_id, credits)
            )
        conn.commit()
    return World(orgs)
