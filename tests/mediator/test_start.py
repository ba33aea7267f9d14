"""Safe start: the mediator refuses roles that bypass RLS and fails fast on a bad database."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tenantgate.cli.preflight import EXIT_DATABASE, EXIT_UNSAFE_ROLE, StartupError, check
from tests.pg import TestDatabase

REPO = Path(__file__).resolve().parents[2]


def serve(transport: str, dsn: str, settings: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTGATE_")}
    env.update(
        TENANTGATE_DATABASE_URL=dsn,
        TENANTGATE_ISSUER=settings.issuer,
        TENANTGATE_AUDIENCE=settings.audience,
        TENANTGATE_JWT_PUBLIC_KEY_FILE=str(settings.jwt_public_key_file),
        TENANTGATE_TOKEN="a.b.c",
    )
    cmd = [sys.executable, "-m", "tenantgate.cli.serve", "--transport", transport, "--port", "0"]
    return subprocess.run(
        cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def with_password(dsn: str, password: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(dsn)
    info["password"] = password
    return make_conninfo("", **info)


@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_a_wrong_password_fails_fast_with_one_line_and_exit_code_3(
    database: TestDatabase, settings: Any, transport: str
) -> None:
    wrong = with_password(database.mediator_dsn, "wrong-password")
    try:
        psycopg.connect(wrong).close()
    except psycopg.OperationalError:
        pass
    else:  # Debian's private test cluster (make test-pg15) trusts local logins
        pytest.skip("this server does not check passwords (trust authentication)")
    started = time.monotonic()
    done = serve(transport, wrong, settings)
    assert time.monotonic() - started < 20
    assert done.returncode == EXIT_DATABASE
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "password authentication failed" in lines[0]
    assert "wrong-password" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_database_nobody_listens_on_fails_fast_with_exit_code_3(settings: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = serve("http", f"postgresql://tenantgate_mediator:x@127.0.0.1:{port}/db", settings)
    assert done.returncode == EXIT_DATABASE
    assert "is the server running" in done.stderr


@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_a_superuser_connection_string_is_refused_in_one_line(
    database: TestDatabase, settings: Any, transport: str
) -> None:
    done = serve(transport, database.superuser_dsn, settings)
    assert done.returncode == EXIT_UNSAFE_ROLE
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "superuser" in lines[0]
    assert "Connect as tenantgate_mediator" in lines[0]


@pytest.fixture
def make_role(database: TestDatabase) -> Any:
    """make_role("bypassrls" | "member of X") -> a login DSN; the role is dropped afterwards."""
    made: list[str] = []

    def _make(attributes: str = "", member_of: str | None = None) -> str:
        name = f"tg_test_{secrets.token_hex(4)}"
        password = secrets.token_hex(8)
        with database.connect() as conn:
            conn.execute(
                sql.SQL("create role {} login password {} " + attributes).format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
            conn.execute(
                sql.SQL("grant connect on database {} to {}").format(
                    sql.Identifier(database.name), sql.Identifier(name)
                )
            )
            if member_of:
                conn.execute(
                    sql.SQL("grant {} to {}").format(
                        sql.Identifier(member_of), sql.Identifier(name)
                    )
                )
        made.append(name)
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        info = conninfo_to_dict(database.superuser_dsn)
        info.update(user=name, password=password)
        return make_conninfo("", **info)

    yield _make
    with database.connect() as conn:
        for name in made:
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def test_a_bypassrls_role_is_refused(make_role: Any) -> None:
    with pytest.raises(StartupError) as caught:
        check(make_role("bypassrls"))
    assert caught.value.exit_code == EXIT_UNSAFE_ROLE
    assert "BYPASSRLS" in str(caught.value)


def test_a_role_that_can_act_as_the_owner_of_tenantgate_objects_is_refused(
    make_role: Any,
) -> None:
    with pytest.raises(StartupError) as caught:
        check(make_role(member_of="tenantgate_owner"))
    assert caught.value.exit_code == EXIT_UNSAFE_ROLE
    assert "schema tenantgate" in str(caught.value)


def test_the_mediator_role_passes_the_start_checks(database: TestDatabase) -> None:
    check(database.mediator_dsn)
