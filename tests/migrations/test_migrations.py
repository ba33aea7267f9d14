"""Migrations: upgrade, downgrade and upgrade again; the offline SQL builds the same schema."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from tests.pg import REPO, DatabaseFactory, migrate, url_for

CATALOG = """
select 'table ' || n.nspname || '.' || c.relname || ' rls=' || c.relrowsecurity
       || ' force=' || c.relforcerowsecurity || ' owner=' || pg_get_userbyid(c.relowner)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname in ('tenantgate', 'demo') and c.relkind in ('r', 'v')
union all
select 'function ' || p.oid::regprocedure || ' definer=' || p.prosecdef
       || ' config=' || coalesce(array_to_string(p.proconfig, ','), '') || ' acl='
       || coalesce(array_to_string(p.proacl, ','), '')
from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'tenantgate'
union all
select 'policy ' || schemaname || '.' || tablename || '.' || policyname || ' '
       || array_to_string(roles, ',') || ' ' || coalesce(qual, '') || coalesce(with_check, '')
from pg_policies where schemaname in ('tenantgate', 'demo')
union all
select 'role setting ' || r.rolname || ' ' || array_to_string(s.setconfig, ',')
from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
where r.rolname like 'tenantgate%' and s.setdatabase = 0
order by 1
"""


def schema_of(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(CATALOG).fetchall()]


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )


def test_upgrade_downgrade_and_upgrade_again_on_a_fresh_database(
    database_factory: DatabaseFactory,
) -> None:
    server = database_factory.server
    name = database_factory.create_empty("tg_migrate_roundtrip")
    url = url_for(server, name)
    migrate(url)
    first = schema_of(server.dsn(name))
    assert any(line.startswith("function tenantgate.trust_check") for line in first)
    alembic(url, "downgrade", "base")
    assert schema_of(server.dsn(name)) == []
    with psycopg.connect(server.dsn(name)) as conn:
        assert conn.execute(
            "select count(*) from pg_namespace where nspname in ('tenantgate', 'demo')"
        ).fetchone() == (0,)
    migrate(url)
    assert schema_of(server.dsn(name)) == first
    database_factory.drop(name)


def test_offline_sql_builds_the_same_schema_as_online_migrations(
    database_factory: DatabaseFactory,
) -> None:
    server = database_factory.server
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    offline = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert "create function tenantgate.trust_check" in offline
    online = database_factory.create_empty("tg_migrate_online")
    migrate(url_for(server, online))
    applied = database_factory.create_empty("tg_migrate_offline")
    with psycopg.connect(server.dsn(applied), autocommit=True) as conn:
        conn.execute(offline.encode())
    assert schema_of(server.dsn(applied)) == schema_of(server.dsn(online))
    database_factory.drop(online)
    database_factory.drop(applied)


def test_migrations_need_a_database_url_and_say_so(database_factory: DatabaseFactory) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode != 0
    assert "DATABASE_URL is not set" in done.stderr
