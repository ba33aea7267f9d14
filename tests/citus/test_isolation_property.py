"""Isolation as a property on the Citus cluster: through the gate, a session reads exactly its own
customer's rows, whatever the layout of orgs, connectors and customers across the workers.

tests/sql/test_isolation.py states the same property on one PostgreSQL, partly by reading the
tables as tenantgate_tool with the gate's settings made by hand. On a cluster that direct read is
not meaningful (a multi-shard query runs on the workers, which do not see a setting made on the
coordinator), so here every read goes where production reads go: `tenantgate.call_tool`, as the
mediator, delegated to the org's worker.
"""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import (
    Session,
    Tenant,
    add_connector,
    add_customer,
    add_operator,
    add_org,
    call_tool,
    open_session,
    seed_demo_rows,
)
from tests.pg import TestDatabase

layout = st.lists(  # orgs -> connectors -> customers per connector
    st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=2),
    min_size=1,
    max_size=3,
)


def own_subjects(db: TestDatabase, tenant: Tenant) -> set[str]:
    """The customer's ticket subjects, read as the superuser (each carries a per-customer tag)."""
    with db.connect() as su:
        rows = su.execute(
            "select subject from demo.tickets where org_id = %s and customer_id = %s",
            (tenant.org_id, tenant.customer_id),
        ).fetchall()
    return {str(r[0]) for r in rows}


def subjects_through_the_gate(db: TestDatabase, session: Session) -> set[str]:
    answer = call_tool(db, session, "list_tickets", {"limit": 50})
    assert answer["status"] == "ok", answer
    result = answer["result"]
    assert isinstance(result, dict)
    return {str(item["subject"]) for item in result["items"]}


def build(db: TestDatabase, layout: list[list[int]], data: st.DataObject) -> list[Tenant]:
    tenants: list[Tenant] = []
    for connectors in layout:
        org_id: uuid.UUID = add_org(db, credits=50)
        operator_id = add_operator(db, org_id)
        for customers in connectors:
            connector_id = add_connector(db, org_id)
            for _ in range(customers):
                tenant = Tenant(org_id, operator_id, connector_id,
                                add_customer(db, org_id, connector_id))
                seed_demo_rows(db, tenant, tickets=data.draw(st.integers(1, 3)), invoices=1)
                tenants.append(tenant)
    return tenants


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(layout=layout, data=st.data())
def test_through_the_gate_every_session_reads_exactly_its_own_customers_rows_on_the_cluster(
    database: TestDatabase, layout: list[list[int]], data: st.DataObject
) -> None:
    tenants = build(database, layout, data)
    for tenant in tenants:
        session = open_session(database, tenant)
        assert subjects_through_the_gate(database, session) == own_subjects(database, tenant)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(layout=layout, data=st.data())
def test_a_sessions_secret_opens_no_other_customer_of_any_org_on_the_cluster(
    database: TestDatabase, layout: list[list[int]], data: st.DataObject
) -> None:
    tenants = build(database, layout, data)
    holder = data.draw(st.sampled_from(tenants))
    session = open_session(database, holder)
    for other in tenants:
        if other == holder:
            continue
        borrowed = Session(other, session.session_id, session.secret)
        assert call_tool(database, borrowed, "list_tickets") == {"status": "not_found"}
    assert subjects_through_the_gate(database, session) == own_subjects(database, holder)
