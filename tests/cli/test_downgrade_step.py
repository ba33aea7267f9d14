"""`tenantgate db downgrade -1 --yes`, exactly as the README and --help write it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.cli.conftest import as_json, ok, run
from tests.pg import DatabaseFactory, url_for


@pytest.fixture
def empty_url(database_factory: DatabaseFactory) -> Iterator[str]:
    name = database_factory.create_empty(f"tg_cli_step_{secrets.token_hex(4)}")
    yield url_for(database_factory.server, name)
    database_factory.drop(name)


def test_downgrade_minus_one_steps_back_one_revision(empty_url: str) -> None:
    history = [r["revision"] for r in as_json(run(["db", "history", "--json"]))]
    ok(run(["db", "upgrade"], dsn=empty_url))
    stepped = as_json(run(["db", "downgrade", "-1", "--yes", "--json"], dsn=empty_url))
    assert stepped == {"current": [history[-2]]}
    ok(run(["db", "upgrade"], dsn=empty_url))
    assert as_json(run(["db", "current", "--json"], dsn=empty_url))["current"] == [history[-1]]
