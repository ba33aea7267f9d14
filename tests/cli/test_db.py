"""`tenantgate db`: upgrade, downgrade, current, history, sql, enrol."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import psycopg
import pytest

from tests.cli.conftest import Invoke, as_json, ok, run
from tests.pg import DatabaseFactory, TestDatabase, url_for


@pytest.fixture
def empty_url(database_factory: DatabaseFactory) -> Iterator[str]:
    name = database_factory.create_empty(f"tg_cli_empty_{secrets.token_hex(4)}")
    yield url_for(database_factory.server, name)
    database_factory.drop(name)


def head() -> str:
    rows = as_json(run(["db", "history", "--json"]))
    return str(rows[-1]["revision"])


def test_upgrade_builds_an_empty_database_and_check_is_clean(empty_url: str) -> None:
    before = run(["db", "current", "--json"], dsn=empty_url)
    assert before.exit_code == 1
    assert json.loads(before.stdout)["current"] == []
    upgraded = as_json(run(["db", "upgrade", "--json"], dsn=empty_url))
    assert upgraded == {"current": [head()]}
    after = as_json(run(["db", "current", "--json"], dsn=empty_url))
    assert after == {"current": [head()], "heads": [head()], "up_to_date": True}
    ok(run(["db", "check"], dsn=empty_url))


def test_upgrade_does_not_create_the_demo_schema(empty_url: str) -> None:
    """A DBA's `db upgrade` builds tenantgate only; the demo and the tests install `demo`."""
    ok(run(["db", "upgrade"], dsn=empty_url))
    with psycopg.connect(empty_url) as conn:
        schemas = conn.execute("select nspname from pg_namespace"
                               " where nspname in ('tenantgate', 'tenantgate_tools', 'demo')"
                               " order by 1").fetchall()
    assert schemas == [("tenantgate",), ("tenantgate_tools",)]


def test_downgrade_to_base_removes_everything_and_upgrade_works_again(empty_url: str) -> None:
    ok(run(["db", "upgrade"], dsn=empty_url))
    assert as_json(run(["db", "downgrade", "base", "--yes", "--json"], dsn=empty_url)) == {
        "current": []}
    gone = run(["db", "current", "--json"], dsn=empty_url)
    assert gone.exit_code == 1
    assert json.loads(gone.stdout)["current"] == []
    with psycopg.connect(empty_url) as conn:
        row = conn.execute("select count(*) from pg_namespace"
                           " where nspname in ('tenantgate', 'demo')").fetchone()
    assert row == (0,)
    ok(run(["db", "upgrade"], dsn=empty_url))
    assert as_json(run(["db", "current", "--json"], dsn=empty_url))["up_to_date"] is True


def test_upgrade_to_a_revision_then_current_says_what_to_run(empty_url: str) -> None:
    ok(run(["db", "upgrade", "0002"], dsn=empty_url))
    result = run(["db", "current"], dsn=empty_url)
    assert result.exit_code == 1
    assert "current: 0002" in result.stdout
    assert "tenantgate db upgrade" in result.stdout


def test_downgrade_asks_before_dropping(empty_url: str) -> None:
    ok(run(["db", "upgrade"], dsn=empty_url))
    result = run(["db", "downgrade", "base"], dsn=empty_url, input="n\n")
    assert result.exit_code == 1
    assert as_json(run(["db", "current", "--json"], dsn=empty_url))["up_to_date"] is True


def test_history_lists_revisions_oldest_first_and_marks_applied(database: TestDatabase) -> None:
    rows = as_json(run(["db", "history", "--json"], dsn=database.superuser_dsn))
    assert rows[0]["revision"] == "0001"
    assert rows[0]["down_revision"] is None
    assert all(r["applied"] for r in rows)
    offline = as_json(run(["db", "history", "--json"]))
    assert "applied" not in offline[0]


def test_sql_prints_the_migration_without_a_database() -> None:
    result = ok(run(["db", "sql"], env={"DATABASE_URL": None}))
    text = result.stdout
    assert "create role tenantgate_mediator" in text
    assert "force row level security" in text
    assert "\\:" not in text  # the bind-parameter escaping never reaches the reviewed SQL
    assert text.strip().endswith("COMMIT;")


def test_sql_prints_one_revision_range_and_the_downgrade() -> None:
    partial = ok(run(["db", "sql", "--from", "0005", "--to", "0006"])).stdout
    assert "create schema tenantgate_tools" in partial
    assert "create function tenantgate.call_tool" in partial
    assert "create schema tenantgate;" not in partial
    assert "create schema demo" not in partial
    down = ok(run(["db", "sql", "--downgrade", "--from", "0006", "--to", "0005"])).stdout
    assert "drop function if exists tenantgate.call_tool" in down.lower()
    assert "create function tenantgate.call_tool" not in down


def test_db_commands_need_a_dsn() -> None:
    result = run(["db", "check"])
    assert result.exit_code == 2
    assert "DATABASE_URL" in result.stderr


def test_dsn_comes_from_database_url(database: TestDatabase) -> None:
    ok(run(["db", "check"], env={"DATABASE_URL": database.url}))
    ok(run(["db", "check"], env={"TENANTGATE_DSN": database.admin_dsn}))


def test_wrong_password_is_one_line_without_the_password(database: TestDatabase) -> None:
    dsn = database.admin_dsn.replace("admin-test-password", "not-the-password")
    try:
        psycopg.connect(dsn).close()
    except psycopg.OperationalError:
        pass
    else:
        pytest.skip("this server does not check passwords (trust authentication)")
    result = run(["org", "list"], dsn=dsn)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "password authentication failed" in result.stderr
    assert "not-the-password" not in result.stderr
    assert f"127.0.0.1:{database.server.port}" in result.stderr or database.server.host in \
        result.stderr


def test_malformed_dsn_is_one_line() -> None:
    result = run(["org", "list"], dsn="colour=blue")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "invalid DSN" in result.stderr


def test_management_command_on_an_unmigrated_database_says_to_upgrade(empty_url: str) -> None:
    result = run(["org", "list"], dsn=empty_url)
    assert result.exit_code == 1
    assert "tenantgate db upgrade" in result.stderr


def test_enrol_puts_a_table_under_forced_rls(database: TestDatabase, dba: Invoke) -> None:
    with database.connect(autocommit=True) as conn:
        conn.execute("create schema crm")
        conn.execute("create table crm.notes (tenant uuid not null, client uuid not null,"
                     " body text, primary key (tenant, client))")
    before = run(["db", "check", "--json"], dsn=database.superuser_dsn)
    assert before.exit_code == 0  # other column names: not a tenant table by name
    result = dba("db", "enrol", "crm.notes", "--org-column", "tenant",
                 "--customer-column", "client", "--privilege", "select",
                 "--privilege", "update", "--json")
    record = as_json(result)
    assert record["table"] == "crm.notes"
    assert record["findings"] == []
    with database.connect() as conn:
        row = conn.execute("select relrowsecurity, relforcerowsecurity from pg_class"
                           " where oid = 'crm.notes'::regclass").fetchone()
        assert row == (True, True)
        privs = conn.execute("select has_table_privilege('tenantgate_tool', 'crm.notes',"
                             " 'update'), has_table_privilege('tenantgate_tool',"
                             " 'crm.notes', 'delete'), has_table_privilege('tenantgate_mediator',"
                             " 'crm.notes', 'select')").fetchone()
        assert privs == (True, False, False)  # the gate's tool role only; never the mediator
    ok(run(["db", "check"], dsn=database.superuser_dsn))


def test_enrol_without_an_index_warns_on_stderr(database: TestDatabase, dba: Invoke) -> None:
    with database.connect(autocommit=True) as conn:
        conn.execute("create table public.notes (org_id uuid, customer_id uuid, body text)")
    assert run(["db", "check"], dsn=database.superuser_dsn).exit_code == 1
    result = ok(dba("db", "enrol", "public.notes"))
    assert "enrolled public.notes" in result.stdout
    assert "no index leading with org_id" in result.stderr
    ok(run(["db", "check"], dsn=database.superuser_dsn))


def test_enrol_of_a_missing_table_or_column_fails_with_a_hint(dba: Invoke) -> None:
    missing = dba("db", "enrol", "crm.nothing")
    assert missing.exit_code == 1
    assert "schema.table" in missing.stderr
    wrong = dba("db", "enrol", "demo.tickets", "--org-column", "nope")
    assert wrong.exit_code == 1
    assert "no uuid column" in wrong.stderr


def test_libpq_environment_works_like_psql(database: TestDatabase) -> None:
    server = database.server
    env: dict[str, str | None] = {"PGHOST": server.host, "PGPORT": str(server.port),
                                  "PGUSER": server.user, "PGPASSWORD": server.password,
                                  "PGDATABASE": database.name}
    assert as_json(run(["db", "current", "--json"], env=env))["up_to_date"] is True
    ok(run(["db", "upgrade"], env=env))
    ok(run(["db", "check"], env=env))
