"""The trust check: the catalog for a live session, one empty answer for any failure.

trust_check is the owner's function now (the mediator lost EXECUTE on it); the tests call it as
the superuser. The mediator's view of the same promise is tenantgate.list_tools: a session that
is not verified gets [] exactly like nothing exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest

from tests.factories import Session, add_tenant, open_session
from tests.pg import TestDatabase

TRUST_CHECK = "select * from tenantgate.trust_check(%s, %s, %s, %s)"


def trust_check(
    db: TestDatabase, org: object, connector: object, customer: object, secret: str
) -> tuple[list[str], list[tuple[object, ...]]]:
    with db.connect() as conn:
        cur = conn.execute(TRUST_CHECK, (org, connector, customer, secret))
        columns = [c.name for c in cur.description or []]
        return columns, cur.fetchall()


def test_live_session_gets_its_connectors_enabled_tools(database: TestDatabase) -> None:
    tenant = add_tenant(database)
    session = open_session(database, tenant)
    with database.connect() as su:
        su.execute("update tenantgate.tools set enabled = false where tool_name = 'list_tickets'")
    _, rows = trust_check(
        database, tenant.org_id, tenant.connector_id, tenant.customer_id, session.secret
    )
    assert [r[4] for r in rows] == ["get_customer_profile", "update_ticket_status"]
    assert {r[0] for r in rows} == {session.session_id}
    assert rows[0][2] == ["read:profile", "read:tickets"]


def _sql(statement: str, *which: str) -> Callable[[TestDatabase, Session], None]:
    def apply(db: TestDatabase, s: Session) -> None:
        values = {
            "customer": s.tenant.customer_id,
            "connector": s.tenant.connector_id,
            "org": s.tenant.org_id,
            "operator": s.tenant.operator_id,
            "session": s.session_id,
        }
        with db.connect() as su:
            su.execute(statement, [values[w] for w in which])

    return apply


STATE_CHANGES = {
    "customer_paused": _sql(
        "update tenantgate.customer_accounts set status = 'paused' where customer_id = %s",
        "customer",
    ),
    "customer_revoked": _sql(
        "update tenantgate.customer_accounts set status = 'revoked' where customer_id = %s",
        "customer",
    ),
    "connector_paused": _sql(
        "update tenantgate.connectors set status = 'paused' where connector_id = %s", "connector"
    ),
    "org_paused": _sql("update tenantgate.orgs set status = 'paused' where org_id = %s", "org"),
    "operator_disabled": _sql(
        "update tenantgate.operators set status = 'disabled' where operator_id = %s", "operator"
    ),
    "session_expired": _sql(
        "update tenantgate.sessions set created_at = now() - interval '1 hour',"
        " expires_at = now() - interval '1 second' where session_id = %s",
        "session",
    ),
    "session_ended": _sql("select tenantgate.end_session(%s, %s)", "org", "session"),
}

WRONG_ARGUMENTS = {
    "wrong_org": lambda s, other: (
        other.tenant.org_id,
        s.tenant.connector_id,
        s.tenant.customer_id,
        s.secret,
    ),
    "wrong_connector": lambda s, other: (
        s.tenant.org_id,
        other.tenant.connector_id,
        s.tenant.customer_id,
        s.secret,
    ),
    "customer_of_another_org": lambda s, other: (
        s.tenant.org_id,
        s.tenant.connector_id,
        other.tenant.customer_id,
        s.secret,
    ),
    "unknown_customer": lambda s, other: (
        s.tenant.org_id,
        s.tenant.connector_id,
        uuid.uuid4(),
        s.secret,
    ),
    "unknown_org": lambda s, other: (
        uuid.uuid4(),
        s.tenant.connector_id,
        s.tenant.customer_id,
        s.secret,
    ),
    "other_sessions_secret": lambda s, other: (
        s.tenant.org_id,
        s.tenant.connector_id,
        s.tenant.customer_id,
        other.secret,
    ),
    "empty_secret": lambda s, other: (
        s.tenant.org_id,
        s.tenant.connector_id,
        s.tenant.customer_id,
        "",
    ),
}


@pytest.fixture
def two_sessions(database: TestDatabase) -> tuple[Session, Session]:
    return open_session(database, add_tenant(database)), open_session(
        database, add_tenant(database)
    )


@pytest.mark.parametrize("case", sorted(WRONG_ARGUMENTS))
def test_trust_check_answers_wrong_arguments_exactly_like_nothing_exists(
    database: TestDatabase, two_sessions: tuple[Session, Session], case: str
) -> None:
    mine, other = two_sessions
    columns, rows = trust_check(database, *WRONG_ARGUMENTS[case](mine, other))
    nothing_columns, nothing = trust_check(database, uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "x")
    assert (columns, rows) == (nothing_columns, nothing) == (nothing_columns, [])


@pytest.mark.parametrize("change", sorted(STATE_CHANGES))
def test_trust_check_answers_inactive_parties_exactly_like_nothing_exists(
    database: TestDatabase, change: str
) -> None:
    tenant = add_tenant(database)
    session = open_session(database, tenant)
    args = (tenant.org_id, tenant.connector_id, tenant.customer_id, session.secret)
    assert trust_check(database, *args)[1], "the session is live before the change"
    STATE_CHANGES[change](database, session)
    columns, rows = trust_check(database, *args)
    assert rows == []
    assert columns == trust_check(database, uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "x")[0]


@pytest.mark.parametrize("role", ["public", "tenantgate_mediator"])
def test_trust_check_is_not_executable_by_public_nor_the_mediator(
    database: TestDatabase, role: str
) -> None:
    with database.connect() as su:
        acl = su.execute(
            "select has_function_privilege(%s, "
            "'tenantgate.trust_check(uuid, uuid, uuid, text)', 'execute')",
            (role,),
        ).fetchone()
    assert acl == (False,)
    tenant = add_tenant(database)
    session = open_session(database, tenant)
    with (
        database.connect("tenantgate_mediator") as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
    ):
        conn.execute(
            TRUST_CHECK, (tenant.org_id, tenant.connector_id, tenant.customer_id, session.secret)
        )


def list_tools(db: TestDatabase, org: object, customer: object, secret: str) -> object:
    with db.connect("tenantgate_mediator") as conn:
        row = conn.execute(
            "select tenantgate.list_tools(%s, %s, %s)", (org, customer, secret)
        ).fetchone()
    assert row is not None
    return row[0]


def test_list_tools_gives_a_live_session_its_enabled_in_scope_tools(
    database: TestDatabase,
) -> None:
    tenant = add_tenant(database)
    session = open_session(database, tenant, scopes=("read:tickets", "write:tickets"))
    tools = list_tools(database, tenant.org_id, tenant.customer_id, session.secret)
    assert isinstance(tools, list)
    assert [t["name"] for t in tools] == ["list_tickets", "update_ticket_status"]
    assert tools[0]["inputSchema"]["additionalProperties"] is False


@pytest.mark.parametrize("case", sorted(set(WRONG_ARGUMENTS) - {"wrong_connector"}))
def test_list_tools_answers_wrong_arguments_exactly_like_nothing_exists(
    database: TestDatabase, two_sessions: tuple[Session, Session], case: str
) -> None:
    mine, other = two_sessions  # (the connector is no argument: the session names it)
    org, _, customer, secret = WRONG_ARGUMENTS[case](mine, other)
    assert list_tools(database, org, customer, secret) == []
    assert list_tools(database, uuid.uuid4(), uuid.uuid4(), "x") == []


@pytest.mark.parametrize("change", sorted(STATE_CHANGES))
def test_list_tools_answers_inactive_parties_exactly_like_nothing_exists(
    database: TestDatabase, change: str
) -> None:
    tenant = add_tenant(database)
    session = open_session(database, tenant)
    args = (tenant.org_id, tenant.customer_id, session.secret)
    assert list_tools(database, *args), "the session is live before the change"
    STATE_CHANGES[change](database, session)
    assert list_tools(database, *args) == []


@pytest.mark.parametrize("change", ["customer_paused", "org_paused", "operator_disabled"])
def test_sessions_cannot_be_opened_for_inactive_parties(
    database: TestDatabase, change: str
) -> None:
    tenant = add_tenant(database)
    STATE_CHANGES[change](database, Session(tenant, uuid.uuid4(), "unused"))
    with pytest.raises(psycopg.errors.NoDataFound, match="not found or inactive"):
        open_session(database, tenant)
