"""Shared fixtures: one throwaway PostgreSQL per test session, a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli import pgserver
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


def pytest_report_header(config: pytest.Config) -> str:
    return (
        "tenantgate: PostgreSQL from TENANTGATE_TEST_DSN, else Docker, else embedded (tests/pg.py)"
    )
