"""The Citus cluster for tests/citus (started once per run by `make test-citus`)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.citus.cluster import Cluster, citus_missing, running_cluster
from tests.cli.conftest import ok, run


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
