"""Bulk tenants for the benchmarks: orgs, customers, live sessions and tickets made in SQL."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from tenantgate.mediator.demo_data import CATALOG

# A session's secret is derived from its customer id, so a client can rebuild it without a lookup.
SECRET_PREFIX = "bench-secret-"


def secret_for(customer_id: str) -> str:
    return SECRET_PREFIX + customer_id


@dataclass(frozen=True, slots=True)
class Tenant:
    """One customer with a live session: what a verified token would carry."""

    org_id: str
    connector_id: str
    customer_id: str
    operator_id: str
    session_id: str = ""

    @property
    def secret(self) -> str:
        return secret_for(self.customer_id)


def add_orgs(conn: psycopg.Connection[tuple[object, ...]], count: int, credits: int = 0) -> None:
    """`count` orgs, each with one operator, one connector carrying the demo catalog."""
    conn.execute(
        "insert into tenantgate.orgs (name) select 'bench-org-' || g || '-' || gen_random_uuid()"
        " from generate_series(1, %s) g",
        (count,),
    )
    conn.execute(
        "insert into tenantgate.operators (org_id, email)"
        " select org_id, 'op@' || org_id || '.example' from tenantgate.orgs o"
        " where not exists (select 1 from tenantgate.operators x where x.org_id = o.org_id)"
    )
    conn.execute(
        "insert into tenantgate.connectors (org_id, name)"
        " select org_id, 'db' from tenantgate.orgs o"
        " where not exists (select 1 from tenantgate.connectors x where x.org_id = o.org_id)"
    )
    for tool, scope, side, cost in CATALOG:
        conn.execute(
            # rate limits out of the way: the benchmarks measure the gate, not its limiter
            "insert into tenantgate.tools (org_id, connector_id, tool_name, required_scope,"
            " side_effect, credit_cost, approval, rate_burst, rate_per_second)"
            " select org_id, connector_id, %s, %s, %s, %s, %s, 1000000000, 1000000000"
            " from tenantgate.connectors on conflict do nothing",
            (tool, scope, side, cost, "operator" if side else "none"),
        )
    if credits:
        conn.execute(
            "select tenantgate.grant_credits(org_id, %s, 'bench-seed')"
            " from tenantgate.orgs o where not exists (select 1 from"
            " tenantgate.credit_accounts a where a.org_id = o.org_id)",
            (credits,),
        )


def add_customers(
    conn: psycopg.Connection[tuple[object, ...]],
    per_org: int,
    tickets_each: int = 0,
    session_hours: int = 6,
) -> None:
    """`per_org` more customers per org, each with a live session and `tickets_each` tickets."""
    conn.execute(
        "create temp table new_customers (org_id uuid, customer_id uuid, connector_id uuid)"
        " on commit drop"
    )
    conn.execute(
        "with made as (insert into tenantgate.customer_accounts (org_id, connector_id, name)"
        " select c.org_id, c.connector_id, 'customer-' || g from tenantgate.connectors c"
        " join tenantgate.orgs o on o.org_id = c.org_id and o.name like 'bench-org-%%',"
        " generate_series(1, %s) g returning org_id, customer_id, connector_id)"
        " insert into new_customers select * from made",
        (per_org,),
    )
    conn.execute(
        "insert into tenantgate.sessions (org_id, operator_id, connector_id, customer_id, scopes,"
        " secret_hash, expires_at)"
        " select n.org_id, op.operator_id, n.connector_id, n.customer_id,"
        " array['read:profile','read:tickets','read:billing','read:health'],"
        " sha256(convert_to(%s || n.customer_id::text, 'UTF8')), now() + make_interval(hours => %s)"
        " from new_customers n cross join lateral (select x.operator_id from"
        " tenantgate.operators x where x.org_id = n.org_id order by x.operator_id limit 1) op",
        (SECRET_PREFIX, session_hours),
    )
    if tickets_each:
        conn.execute(
            "insert into demo.tickets (org_id, customer_id, subject, body, status)"
            " select n.org_id, n.customer_id, 'ticket ' || g || ' of ' || n.customer_id,"
            " 'body ' || g, (array['open','pending','solved','closed'])[1 + g %% 4]"
            " from new_customers n, generate_series(1, %s) g",
            (tickets_each,),
        )
        conn.execute(
            "insert into demo.customer_profiles (org_id, customer_id, full_name, email, company)"
            " select org_id, customer_id, 'Person', 'p@example.com', 'Co' from new_customers"
        )


def sample_tenants(
    conn: psycopg.Connection[tuple[object, ...]], count: int, seed: int = 7
) -> list[Tenant]:
    """Up to `count` random tenants with a live session."""
    conn.execute("select setseed(%s)", (seed / 1000,))
    rows = conn.execute(
        "select s.org_id::text, s.connector_id::text, s.customer_id::text, s.operator_id::text,"
        " s.session_id::text from tenantgate.sessions s"
        " where s.secret_hash = sha256(convert_to(%s || s.customer_id::text, 'UTF8'))"
        " order by random() limit %s",
        (SECRET_PREFIX, count),
    ).fetchall()
    return [Tenant(*map(str, r)) for r in rows]
