"""Enrolling a user's own table puts it under the same forced isolation as the demo tables."""

from __future__ import annotations

import psycopg
import pytest

from tests.factories import add_tenant, as_session, open_session
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
        su.execute("grant usage on schema crm to tenantgate_mediator")
        su.execute("select tenantgate.enrol_table('crm.notes')")
        forced = su.execute(
            "select relrowsecurity, relforcerowsecurity from pg_class"
            " where oid = 'crm.notes'::regclass"
        ).fetchone()
    assert forced == (True, True)
    with as_session(database, open_session(database, mine)) as conn:
        assert conn.execute("select body from crm.notes").fetchall() == [("mine",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from crm.notes")  # only select was granted


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
