"""Fixtures for the credential tests: keys, a second server that logs every statement (Debian's
PostgreSQL 15 when installed) and customers with stored secrets and live sessions."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tenantgate.cli import pgserver
from tenantgate.mediator import secrets as customer_secrets
from tenantgate.mediator.keys import FileKeyProvider, Secret, generate_key_material
from tests.pg import DatabaseFactory, TestDatabase

LOGGED_CONFIG = {
    "log_statement": "all",
    "log_min_error_statement": "info",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
}


@pytest.fixture(scope="session")
def logged_server() -> Iterator[pgserver.RunningServer]:
    """A second server logging every statement, with pg_stat_statements: where keys would leak.

    Debian's PostgreSQL 15 when its binaries are installed (a second version for the interop
    tests), else another embedded PostgreSQL 18.
    """
    if pgserver.system_bindir() is not None:
        server = pgserver.start_system(LOGGED_CONFIG)
    else:
        server = pgserver.start_embedded(LOGGED_CONFIG)
    try:
        yield server
    finally:
        server.stop()


def server_log(server: pgserver.RunningServer) -> str:
    """Everything the server has logged so far (both backends write *.log under their folder)."""
    folder = Path(str(server._workdir))
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*.log")))


@pytest.fixture(scope="session")
def logged_factory(logged_server: pgserver.RunningServer) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(logged_server)
    factory.prepare()
    yield factory
    factory.drop_all()


@pytest.fixture
def logged_database(logged_factory: DatabaseFactory) -> Iterator[TestDatabase]:
    db = logged_factory.clone()
    yield db
    logged_factory.drop(db.name)


@pytest.fixture(params=["test-server", "second-server"])
def pgcrypto_conn(
    request: pytest.FixtureRequest, database_factory: DatabaseFactory
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A superuser connection with pgcrypto, on the test server and on the second server."""
    factory = database_factory
    if request.param == "second-server":
        factory = request.getfixturevalue("logged_factory")
    db = factory.clone()
    try:
        with psycopg.connect(db.superuser_dsn, autocommit=True) as conn:
            conn.execute("create extension if not exists pgcrypto")
            yield conn
    finally:
        factory.drop(db.name)


@pytest.fixture
def keys() -> FileKeyProvider:
    """Two keys, k1 current: rotation moves rows to k2."""
    return FileKeyProvider({"k1": generate_key_material(), "k2": generate_key_material()}, "k1")


@dataclass
class Customer:
    org_id: uuid.UUID
    customer_id: uuid.UUID
    connector_id: uuid.UUID
    operator_id: uuid.UUID
    name: str
    api_key: Secret


@dataclass
class World:
    """Two orgs' worth of customers with stored secrets, and how to open a verified session."""

    db: TestDatabase
    acme: Customer
    beta: Customer

    def open_session(self, customer: Customer) -> str:
        """Open a live session for ``customer``; returns its secret (what a token would carry)."""
        session_secret = secrets.token_urlsafe(24)
        digest = hashlib.sha256(session_secret.encode()).digest()
        with psycopg.connect(self.db.session_manager_dsn, autocommit=True) as conn:
            conn.execute(
                "select * from tenantgate.open_session(%s, %s, %s, %s, %s, %s, %s)",
                (
                    customer.org_id,
                    customer.operator_id,
                    customer.connector_id,
                    customer.customer_id,
                    ["read:billing"],
                    "1 hour",
                    digest,
                ),
            )
        return session_secret


def seed_customer(
    conn: psycopg.Connection[tuple[object, ...]],
    org_name: str,
    name: str,
    base_url: str,
    auth_header: str = "Authorization",
) -> Customer:
    """An org, an operator, an HTTP connector and one customer account (as the admin)."""
    row = conn.execute(
        "insert into tenantgate.orgs (name) values (%s) returning org_id", (org_name,)
    ).fetchone()
    assert row is not None
    org_id = row[0]
    row = conn.execute(
        "insert into tenantgate.operators (org_id, email) values (%s, %s) returning operator_id",
        (org_id, f"cs@{org_name.lower()}.example"),
    ).fetchone()
    assert row is not None
    operator_id = row[0]
    row = conn.execute(
        "insert into tenantgate.connectors (org_id, name, base_url, auth_header) "
        "values (%s, 'billing', %s, %s) returning connector_id",
        (org_id, base_url, auth_header),
    ).fetchone()
    assert row is not None
    connector_id = row[0]
    row = conn.execute(
        "insert into tenantgate.customer_accounts (org_id, connector_id, name) "
        "values (%s, %s, %s) returning customer_id",
        (org_id, connector_id, name),
    ).fetchone()
    assert row is not None
    return Customer(
        org_id,
        row[0],
        connector_id,
        operator_id,
        name,
        Secret(f"sk_live_{name.lower()}_{secrets.token_hex(16)}"),
    )


def build_world(db: TestDatabase, keys: FileKeyProvider, base_url: str) -> World:
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        acme = seed_customer(conn, "Acme", "Acme", base_url)
        beta = seed_customer(conn, "Beta", "Beta", base_url)
        for customer in (acme, beta):
            customer_secrets.set_secret(
                conn, keys, customer.org_id, customer.customer_id, customer.api_key
            )
    return World(db, acme, beta)
