"""Enrolling a user's own table puts it under the same forced isolation as the demo tables."""

from __future__ import annotations

import psycopg
import pytest

from tests.factories import add_tenant, as_session, as_tool_role, call_tool, open_session
from tests.pg import TestDatabase

USER_TABLE = """
create schema crm;
create table crm.notes (org_id uuid not null, customer_id uuid not null, body text not null);
create index on crm.notes (org_id, customer_id);
"""


def test_an_enrolled_user_table_shows_a_session_only_its_customers_rows(
    database: TestDatabase,
) -> None:
    mine, theirs = add_tenant(database), add_tenant(database)
    with database.connect() as su:
        su.execute(USER_TABLE)
        for tenant, body in ((mine, "mine"), (theirs, "theirs")):
            su.execute(
                "insert into crm.notes values (%s, %s, %s)",
                (tenant.org_id, tenant.customer_id, body),
            )
        # even a schema grant a DBA gave the mediator by habit does not open the table to it
        su.execute("grant usage on schema crm to tenantgate_mediator")
        su.execute("grant select on crm.notes to tenantgate_mediator")
        su.execute("select tenantgate.enrol_table('crm.notes')")
        forced = su.execute(
            "select relrowsecurity, relforcerowsecurity from pg_class"
            " where oid = 'crm.notes'::regclass"
        ).fetchone()
    assert forced == (True, True)
    session = open_session(database, mine)
    with as_tool_role(database, session) as conn:
        assert conn.execute("select body from crm.notes").fetchall() == [("mine",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from crm.notes")  # only select was granted
    with as_session(database, session) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select body from crm.notes")  # enrolment took the mediator's grant away


def test_enrolment_keeps_full_access_for_the_products_own_role(database: TestDatabase) -> None:
    tenant = add_tenant(database)
    with database.connect(autocommit=True) as su:
        su.execute("drop role if exists crm_app")
        su.execute("create role crm_app")
    try:
        with database.connect() as su:
            su.execute(USER_TABLE)
            su.execute("alter table crm.notes owner to crm_app")
            su.execute(
                "insert into crm.notes values (%s, %s, 'x')", (tenant.org_id, tenant.customer_id)
            )
            su.execute("grant usage on schema crm to crm_app")
            su.execute(
                "select tenantgate.enrol_table('crm.notes', p_full_access_roles => "
                "array['crm_app']::name[])"
            )
            su.execute("set role crm_app")  # the owner: FORCE applies to it, its policy lets it in
            assert su.execute("select count(*) from crm.notes").fetchone() == (1,)
    finally:
        with database.connect(autocommit=True) as su:
            su.execute("drop schema if exists crm cascade")
            su.execute("drop role if exists crm_app")


@pytest.mark.parametrize(
    ("ddl", "message"),
    [
        ("create table crm.t (org uuid, customer_id uuid)", "no uuid column org_id"),
        ("create table crm.t (org_id text, customer_id uuid)", "no uuid column org_id"),
        ("create table crm.t (org_id uuid, customer_id bigint)", "no uuid column customer_id"),
    ],
)
def test_enrolment_refuses_tables_without_uuid_tenant_columns(
    database: TestDatabase, ddl: str, message: str
) -> None:
    with database.connect() as su:
        su.execute("create schema crm")
        su.execute(ddl)
        with pytest.raises(psycopg.errors.UndefinedColumn, match=message):
            su.execute("select tenantgate.enrol_table('crm.t')")


def test_enrolment_refuses_unknown_privileges(database: TestDatabase) -> None:
    with database.connect() as su:
        su.execute(USER_TABLE)
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="truncate"):
            su.execute(
                "select tenantgate.enrol_table('crm.notes', p_privileges => "
                "array['select', 'truncate'])"
            )


NOTES_TOOLS = b"""
version: 1
tools:
  list_notes:
    description: The current customer's notes.
    statement: select body from crm.notes where org_id = :org_id and customer_id = :customer_id
    catalog: {scope: read:notes, cost: 1}
"""


def test_a_users_own_tool_over_an_enrolled_table_serves_only_the_sessions_customer(
    database: TestDatabase,
) -> None:
    from tenantgate.cli.demo_schema import DEMO_TOOLS
    from tenantgate.cli.toolfile import compile as toolfile_compile
    from tenantgate.cli.toolfile.spec import load, loads

    mine, theirs = add_tenant(database, credits=10), add_tenant(database, credits=10)
    with database.connect(autocommit=True) as su:
        su.execute(USER_TABLE)
        for tenant, body in ((mine, "mine"), (theirs, "theirs")):
            su.execute(
                "insert into crm.notes values (%s, %s, %s)",
                (tenant.org_id, tenant.customer_id, body),
            )
        su.execute("select tenantgate.enrol_table('crm.notes')")
        su.execute(
            "insert into tenantgate.column_classes (relation, column_name, data_class)"
            " values ('crm.notes', 'body', 'internal')"
        )
        toolfile_compile.apply(su, [load(DEMO_TOOLS), loads(NOTES_TOOLS, "notes.yaml")])
    with database.connect("tenantgate_admin") as admin:
        admin.execute(
            "insert into tenantgate.tools (org_id, connector_id, tool_name, required_scope)"
            " values (%s, %s, 'list_notes', 'read:notes')",
            (mine.org_id, mine.connector_id),
        )
    session = open_session(database, mine, scopes=("read:notes",))
    answer = call_tool(database, session, "list_notes")
    assert answer == {"status": "ok", "result": {"items": [{"body": "mine"}], "truncated": False}}
