"""Shared fixtures: one throwaway PostgreSQL per test session, a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tenantgate.cli import pgserver
from tests.pg import DatabaseFactory, TestDatabase, throwaway_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.RunningServer]:
    """The session's PostgreSQL server (see tests/pg.py for how it is chosen)."""
    with throwaway_server() as server:
        yield server


@pytest.fixture(scope="session")
def database_factory(pg_server: pgserver.RunningServer) -> Iterator[DatabaseFactory]:
    """Migrates a template database once; clones it on demand."""
    factory = DatabaseFactory(pg_server)
    factory.prepare()
    yield factory
    factory.drop_all()


@pytest.fixture
def database(database_factory: DatabaseFactory) -> Iterator[TestDatabase]:
    """A fresh database migrated to head, dropped after the test."""
    db = database_factory.clone()
    yield db
    database_factory.drop(db.name)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def es_key() -> ec.EllipticCurvePrivateKey:
    """The token signing key of the test session, generated at run time: none is ever committed."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def public_pem_file(
    tmp_path_factory: pytest.TempPathFactory, es_key: ec.EllipticCurvePrivateKey
) -> Path:
    """The public half of `es_key`, as the PEM file the mediator's settings point at."""
    path = tmp_path_factory.mktemp("keys") / "signing.pub.pem"
    path.write_bytes(
        es_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def pytest_report_header(config: pytest.Config) -> str:
    return (
        "tenantgate: PostgreSQL from TENANTGATE_TEST_DSN, else Docker, else embedded (tests/pg.py)"
    )
