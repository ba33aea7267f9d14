"""The Citus cluster for tests/citus (started once per run by `make test-citus`).

Suites written for one PostgreSQL (tests/mediator) run here unchanged: `database` is the
cluster's distributed database instead of a fresh clone, and the mediator fixtures below are the
same functions, imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from tenantgate.mediator.demo_data import World, seed
from tests.citus.cluster import Cluster, citus_missing, running_cluster
from tests.cli.conftest import ok, run
from tests.mediator.conftest import (  # noqa: F401  (fixtures, used by name)
    http_url,
    open_session,
    sessions,
    settings,
    signer,
    verifier,
)
from tests.pg import TestDatabase

DEMO_ORGS = ("Northwind", "Globex")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A coordinator and two workers, migrated with `db upgrade` and spread with `db distribute`."""
    if os.environ.get("TENANTGATE_TEST_CITUS") != "1":
        pytest.skip("the Citus cluster tests run with `make test-citus`")
    reason = citus_missing()
    if reason:
        pytest.skip(reason)
    with running_cluster() as started:
        dsn = started.coordinator.dsn("tenantgate")
        started.reviewed_sql = ok(run(["db", "distribute", "--sql"], dsn=dsn)).stdout
        result = ok(run(["db", "distribute"], dsn=dsn))
        started.distributed = (result.stdout, result.stderr)
        yield started


@pytest.fixture
def database(cluster: Cluster) -> TestDatabase:
    """The cluster's distributed database, where tests/mediator's suites expect a fresh one."""
    return cluster.database


@pytest.fixture
def world(database: TestDatabase) -> World:
    """The demo world, seeded as tests/mediator seeds it, with new orgs for every test.

    Org names are unique, so the previous test's Northwind and Globex are renamed first; their
    rows stay (the database is shared by the whole run), and every check reads its own org's.
    """
    with psycopg.connect(database.superuser_dsn, autocommit=True) as conn:
        conn.execute("update tenantgate.orgs set name = name || ' ' || org_id::text"
                     " where name = any(%s)", (list(DEMO_ORGS),))
    return seed(database.superuser_dsn, rate_burst=1000, rate_per_second=1000.0)
