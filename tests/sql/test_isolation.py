"""Row-level isolation: a session sees exactly its own customer's rows, and nothing else ever.

Two layers since the gate (issue 9): the mediator's credential has no privilege on any enrolled
table at all, and the role that does read them (tenantgate_tool, which runs the gate's tool
functions) is held by the isolation policy to the verified session's customer.
"""

from __future__ import annotations

import re
import secrets
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import (
    ENROLLED_TABLES,
    Session,
    Tenant,
    add_connector,
    add_customer,
    add_operator,
    add_org,
    add_tenant,
    as_session,
    as_tool_role,
    call_tool,
    open_session,
    seed_demo_rows,
    set_context,
)
from tests.pg import TestDatabase


def visible_keys(conn: psycopg.Connection[tuple], table: str) -> set[tuple[uuid.UUID, uuid.UUID]]:  # type: ignore[type-arg]
    rows = conn.execute(f"select distinct org_id, customer_id from {table}").fetchall()
    return {(r[0], r[1]) for r in rows}


# --- the property -------------------------------------------------------------------------------

layout = st.lists(  # orgs -> connectors -> customers per connector
    st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=2),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(layout=layout, data=st.data())
def test_a_session_sees_exactly_its_own_customers_rows_in_every_enrolled_table(
    database: TestDatabase, layout: list[list[int]], data: st.DataObject
) -> None:
    tenants: list[Tenant] = []
    for connectors in layout:
        org_id = add_org(database, credits=10)
        operator_id = add_operator(database, org_id)
        for customers in connectors:
            connector_id = add_connector(database, org_id)
            for _ in range(customers):
                tenant = Tenant(
                    org_id, operator_id, connector_id, add_customer(database, org_id, connector_id)
                )
                seed_demo_rows(database, tenant, tickets=data.draw(st.integers(1, 3)), invoices=1)
                tenants.append(tenant)

    chosen = data.draw(st.sampled_from(tenants))
    session = open_session(database, chosen)
    with as_tool_role(database, session) as conn:
        for table in ENROLLED_TABLES:
            assert visible_keys(conn, table) == {(chosen.org_id, chosen.customer_id)}, table
        with database.connect() as su:
            expected_tickets = su.execute(
                "select count(*) from demo.tickets where org_id = %s and customer_id = %s",
                (chosen.org_id, chosen.customer_id),
            ).fetchone()
        assert conn.execute("select count(*) from demo.tickets").fetchone() == expected_tickets
    # and through the gate, as the mediator: exactly the chosen customer's tickets
    answer = call_tool(database, session, "list_tickets", {"limit": 50})
    assert answer["status"] == "ok"
    assert expected_tickets is not None
    assert len(answer["result"]["items"]) == expected_tickets[0]  # type: ignore[index]


# --- a session's rows disappear on the very next query when anything about it stops being live ---


def _pause(db: TestDatabase, sql: str, *params: object) -> None:
    with db.connect() as conn:
        conn.execute(sql, params)


LIFECYCLE = {
    "session_ended": lambda db, s: _pause(
        db, "select tenantgate.end_session(%s, %s)", s.tenant.org_id, s.session_id
    ),
    "session_expired": lambda db, s: _pause(
        db,
        "update tenantgate.sessions set created_at = now() - interval '2 hours',"
        " expires_at = now() - interval '1 second' where session_id = %s",
        s.session_id,
    ),
    "customer_paused": lambda db, s: _pause(
        db,
        "update tenantgate.customer_accounts set status = 'paused' where customer_id = %s",
        s.tenant.customer_id,
    ),
    "customer_revoked": lambda db, s: _pause(
        db,
        "update tenantgate.customer_accounts set status = 'revoked' where customer_id = %s",
        s.tenant.customer_id,
    ),
    "connector_paused": lambda db, s: _pause(
        db,
        "update tenantgate.connectors set status = 'paused' where connector_id = %s",
        s.tenant.connector_id,
    ),
    "org_paused": lambda db, s: _pause(
        db, "update tenantgate.orgs set status = 'paused' where org_id = %s", s.tenant.org_id
    ),
    "org_revoked": lambda db, s: _pause(
        db, "update tenantgate.orgs set status = 'revoked' where org_id = %s", s.tenant.org_id
    ),
    "operator_disabled": lambda db, s: _pause(
        db,
        "update tenantgate.operators set status = 'disabled' where operator_id = %s",
        s.tenant.operator_id,
    ),
}


@pytest.mark.parametrize("change", sorted(LIFECYCLE))
def test_session_reads_nothing_on_the_very_next_tool_call_once_it_is_no_longer_live(
    database: TestDatabase, change: str
) -> None:
    tenant = add_tenant(database, credits=10)
    seed_demo_rows(database, tenant, tickets=2)
    session = open_session(database, tenant)
    before = call_tool(database, session, "list_tickets")
    assert before["status"] == "ok"
    assert len(before["result"]["items"]) == 2  # type: ignore[index]
    LIFECYCLE[change](database, session)  # committed by an admin between two tool calls
    for tool in ("list_tickets", "get_customer_profile"):
        assert call_tool(database, session, tool) == {"status": "not_found"}, tool


# --- the mediator's credential alone ------------------------------------------------------------


@pytest.fixture
def live(database: TestDatabase) -> Session:
    tenant = add_tenant(database, credits=10)
    seed_demo_rows(database, tenant)
    return open_session(database, tenant)


WRITES = (
    "update {table} set org_id = org_id",
    "delete from {table}",
    "insert into {table} (org_id, customer_id) values (gen_random_uuid(), gen_random_uuid())",
    "truncate {table}",
)


@pytest.mark.parametrize("table", ENROLLED_TABLES)
def test_mediator_without_a_session_is_denied_every_enrolled_table(
    database: TestDatabase, live: Session, table: str
) -> None:
    with database.connect("tenantgate_mediator", autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"select count(*) from {table}")
        for statement in WRITES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.format(table=table))


@pytest.mark.parametrize("table", ENROLLED_TABLES)
def test_mediator_with_a_live_session_secret_is_still_denied_every_enrolled_table(
    database: TestDatabase, live: Session, table: str
) -> None:
    """A compromised mediator with a live secret reads and writes no tenant row directly."""
    for statement in ("select count(*) from {table}", *WRITES):
        with (
            as_session(database, live) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(statement.format(table=table))


def test_mediator_holds_no_privilege_on_any_enrolled_table(database: TestDatabase) -> None:
    with database.connect() as su:
        held = su.execute(
            "select c.oid::regclass::text, p.priv from pg_catalog.pg_policy pol"
            " join pg_catalog.pg_class c on c.oid = pol.polrelid"
            " cross join unnest(array['select', 'insert', 'update', 'delete', 'truncate',"
            " 'references', 'trigger']) p(priv)"
            " where pol.polname = 'tenantgate_isolation'"
            " and has_table_privilege('tenantgate_mediator', c.oid, p.priv)"
        ).fetchall()
        enrolled = su.execute(
            "select count(distinct polrelid) from pg_catalog.pg_policy"
            " where polname = 'tenantgate_isolation'"
        ).fetchone()
    assert enrolled == (len(ENROLLED_TABLES),)
    assert held == []


def test_tool_role_without_a_session_reads_zero_rows_of_any_enrolled_table(
    database: TestDatabase, live: Session
) -> None:
    with database.connect() as conn, conn.transaction():
        conn.execute("set local role tenantgate_tool")
        for table in ENROLLED_TABLES:
            assert conn.execute(f"select count(*) from {table}").fetchone() == (0,), table


@pytest.mark.parametrize("secret", ["", "guess", "0" * 43, "x' or '1'='1"])
def test_mediator_with_real_ids_and_a_guessed_secret_gets_not_found_from_the_gate(
    database: TestDatabase, live: Session, secret: str
) -> None:
    for tool in ("list_tickets", "get_customer_profile"):
        assert call_tool(database, live, tool, secret=secret) == {"status": "not_found"}
    with (
        as_session(database, Session(live.tenant, live.session_id, secret)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("select count(*) from demo.tickets")


def test_mediator_with_the_stored_secret_hash_as_secret_gets_not_found_from_the_gate(
    database: TestDatabase, live: Session
) -> None:
    with database.connect() as su:
        row = su.execute("select encode(secret_hash, 'hex') from tenantgate.sessions").fetchone()
    assert row is not None
    assert call_tool(database, live, "list_tickets", secret=row[0]) == {"status": "not_found"}


def test_mediator_after_session_level_settings_of_real_ids_is_still_denied_and_not_found(
    database: TestDatabase, live: Session
) -> None:
    guessed = secrets.token_urlsafe(32)
    with database.connect("tenantgate_mediator", autocommit=True) as conn:
        for name, value in (
            ("app.org_id", live.tenant.org_id),
            ("app.customer_id", live.tenant.customer_id),
            ("app.session_id", live.session_id),
            ("app.operator_id", live.tenant.operator_id),
            ("app.session_secret", guessed),
        ):
            conn.execute("select set_config(%s, %s, false)", (name, str(value)))
        for table in ENROLLED_TABLES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"select count(*) from {table}")
        # the gate sets (and verifies) its own context: lingering settings lend nothing
        answer = conn.execute(
            "select tenantgate.call_tool(%s, %s, %s, null, 'list_tickets', '{}')",
            (live.tenant.org_id, live.tenant.customer_id, guessed),
        ).fetchone()
    assert answer == ({"status": "not_found"},)


@pytest.mark.parametrize("value", ["not-a-uuid", "", "'; drop table demo.tickets; --"])
def test_malformed_context_settings_read_as_no_context_not_as_an_error(
    database: TestDatabase, live: Session, value: str
) -> None:
    with database.connect() as conn, conn.transaction():
        conn.execute("set local role tenantgate_tool")
        set_context(conn, value, value, live.secret)
        assert conn.execute("select count(*) from demo.tickets").fetchone() == (0,)


def test_tool_role_without_a_session_cannot_write_any_enrolled_table(
    database: TestDatabase, live: Session
) -> None:
    tenant = live.tenant
    with database.connect() as conn:
        conn.execute("set role tenantgate_tool")
        updated = conn.execute("update demo.tickets set status = 'closed'").rowcount
        assert updated == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "insert into demo.tickets (org_id, customer_id, subject) values (%s, %s, 'forged')",
                (tenant.org_id, tenant.customer_id),
            )


def test_a_session_cannot_move_or_write_rows_into_another_customer(database: TestDatabase) -> None:
    mine, theirs = add_tenant(database), add_tenant(database)
    seed_demo_rows(database, mine)
    session = open_session(database, mine)
    with (
        as_tool_role(database, session) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(
            "update demo.tickets set org_id = %s, customer_id = %s",
            (theirs.org_id, theirs.customer_id),
        )


@pytest.mark.parametrize(
    "table",
    [
        "sessions",
        "customer_secrets",
        "orgs",
        "customer_accounts",
        "credit_accounts",
        "credit_ledger",
        "audit_log",
        "tools",
    ],
)
def test_mediator_cannot_read_control_tables(
    database: TestDatabase, live: Session, table: str
) -> None:
    with as_session(database, live) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"select * from tenantgate.{table}")


def test_policy_reads_the_gates_tenant_once_per_query_and_uses_the_org_index(
    database: TestDatabase, live: Session
) -> None:
    with as_tool_role(database, live) as conn:
        conn.execute("set local enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "explain select * from demo.tickets where status = 'open'"
            ).fetchall()
        )
    index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "org_id =" in index_cond
    assert "customer_id =" in index_cond
    assert plan.count("InitPlan") >= 1
    # gate_tenant() is inlined (sql/89_fastgate): no function call per query, and its settings
    # are read once, in the InitPlan the index condition compares with
    assert "gate_tenant" not in plan
    # (PostgreSQL 17+ names the InitPlan's outputs "(InitPlan 1).colN"; 15 and 16 say "$0", "$1")
    assert re.search(r"org_id = (\(InitPlan 1\)\.col1|\$0)\b", index_cond), index_cond
    assert re.search(r"customer_id = (\(InitPlan 1\)\.col2|\$1)\b", index_cond), index_cond


def test_history_is_visible_only_to_its_own_live_session(database: TestDatabase) -> None:
    tenant = add_tenant(database)
    first, second = open_session(database, tenant), open_session(database, tenant)
    with as_session(database, first) as conn:
        conn.execute(
            "insert into tenantgate.session_messages (org_id, session_id, role, content)"
            " values (%s, %s, 'user', 'hello')",
            (tenant.org_id, first.session_id),
        )
    with as_session(database, second) as conn:
        assert conn.execute("select count(*) from tenantgate.session_messages").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "insert into tenantgate.session_messages (org_id, session_id, role, content)"
                " values (%s, %s, 'user', 'spoof')",
                (tenant.org_id, first.session_id),
            )
    with as_session(database, first) as conn:
        assert conn.execute("select content from tenantgate.session_messages").fetchall() == [
            ("hello",)
        ]
    with database.connect() as su:
        su.execute("select tenantgate.end_session(%s, %s)", (tenant.org_id, first.session_id))
        left = su.execute("select count(*) from tenantgate.session_messages").fetchone()
    assert left == (0,)
