"""Revision 0011 (sql/89_pgcpu) changes function bodies only, and its downgrade puts back
exactly what 0010 had: every tenantgate function's source, volatility, settings, owner rights
and comment match a fresh database at 0010."""

from __future__ import annotations

import psycopg

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
TABLES = """
select c.oid::regclass::text, pg_get_constraintdef(k.oid)
from pg_constraint k join pg_class c on c.oid = k.conrelid
join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'tenantgate'
order by 1, 2
"""


def snapshot(dsn: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(FUNCTIONS).fetchall(), conn.execute(TABLES).fetchall()


def test_downgrading_0011_leaves_the_functions_of_a_fresh_0010(
    database_factory: DatabaseFactory,
) -> None:
    server = database_factory.server
    fresh = database_factory.create_empty("tg_pgcpu_fresh_0010")
    migrate(url_for(server, fresh), "0010")
    stepped = database_factory.create_empty("tg_pgcpu_down_0011")
    url = url_for(server, stepped)
    migrate(url, "0011")
    upgraded = snapshot(server.dsn(stepped))
    assert upgraded[1] == snapshot(server.dsn(fresh))[1]  # no constraint changed: bodies only
    assert upgraded[0] != snapshot(server.dsn(fresh))[0]
    alembic(url, "downgrade", "0010")
    assert snapshot(server.dsn(stepped)) == snapshot(server.dsn(fresh))
    database_factory.drop(fresh)
    database_factory.drop(stepped)

