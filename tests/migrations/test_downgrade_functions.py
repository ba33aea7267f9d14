"""Downgrades put back exactly the functions of the revision before.

0009, 0010 and 0011 replace function bodies; their downgrades re-run the definitions from the
files that made them (migrations.sqlfile.rerun_function_files / rerun_functions) instead of
restating them. After `downgrade`, every tenantgate function's source, volatility, security,
settings, owner rights and comment match a fresh database at the revision before. 0011 changes
bodies only, so its constraints match as well.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.migrations.test_migrations import alembic
from tests.pg import DatabaseFactory, migrate, url_for

FUNCTIONS = """
select p.oid::regprocedure::text, p.prosrc, p.provolatile, p.prosecdef,
       coalesce(array_to_string(p.proconfig, ','), ''),
       coalesce(array_to_string(p.proacl, ','), ''),
       coalesce(obj_description(p.oid, 'pg_proc'), '')
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'tenantgate'
order by 1
"""
CONSTRAINTS = """
select c.oid::regclass::text, pg_get_constraintdef(k.oid)
from pg_constraint k join pg_class c on c.oid = k.conrelid
join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'tenantgate'
order by 1, 2
"""


def snapshot(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.parametrize(
    ("revision", "before"), [("0009", "0008"), ("0010", "0009"), ("0011", "0010")]
)
def test_a_downgrade_leaves_the_functions_of_a_fresh_database_at_the_revision_before(
    database_factory: DatabaseFactory, revision: str, before: str
) -> None:
    server = database_factory.server
    fresh = database_factory.create_empty(f"tg_down_fresh_{before}")
    migrate(url_for(server, fresh), before)
    stepped = database_factory.create_empty(f"tg_down_from_{revision}")
    url = url_for(server, stepped)
    migrate(url, revision)
    assert snapshot(server.dsn(stepped), FUNCTIONS) != snapshot(server.dsn(fresh), FUNCTIONS)
    alembic(url, "downgrade", before)
    assert snapshot(server.dsn(stepped), FUNCTIONS) == snapshot(server.dsn(fresh), FUNCTIONS)
    database_factory.drop(fresh)
    database_factory.drop(stepped)


def test_0011_changes_function_bodies_only(database_factory: DatabaseFactory) -> None:
    server = database_factory.server
    fresh = database_factory.create_empty("tg_bodies_0010")
    migrate(url_for(server, fresh), "0010")
    upgraded = database_factory.create_empty("tg_bodies_0011")
    migrate(url_for(server, upgraded), "0011")
    assert snapshot(server.dsn(upgraded), CONSTRAINTS) == snapshot(server.dsn(fresh), CONSTRAINTS)
    database_factory.drop(fresh)
    database_factory.drop(upgraded)
