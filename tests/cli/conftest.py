"""Run the `tenantgate` command in-process (Typer's CliRunner) against the throwaway Postgres."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tenantgate.cli.main import app
from tests.pg import TestDatabase

CLEAN_ENV = {"DATABASE_URL": None, "TENANTGATE_DSN": None, "TENANTGATE_DEV_HS256_SECRET": None,
             "PGHOST": None, "PGSERVICE": None, "PGDATABASE": None,
             "TENANTGATE_SECRET_KEYS": None, "TENANTGATE_SECRET_KEYS_FILE": None,
             "TENANTGATE_SECRET_KEY_CURRENT": None,
             "TENANTGATE_JWT_PRIVATE_KEY_FILE": None}

Invoke = Callable[..., Result]


def run(args: list[str], *, dsn: str | None = None, env: dict[str, str | None] | None = None,
        input: str | None = None) -> Result:
    """`tenantgate ARGS --dsn DSN` with a clean environment; never lets an exception escape."""
    full = [*args, "--dsn", dsn] if dsn is not None else list(args)
    result = CliRunner().invoke(app, full, env={**CLEAN_ENV, **(env or {})}, input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"tenantgate {' '.join(args)} raised") from result.exception
    return result


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


@pytest.fixture
def admin(database: TestDatabase) -> Invoke:
    """Invoke the command line as tenantgate_admin on a fresh migrated database."""
    def invoke(*args: str, **kwargs: Any) -> Result:
        return run(list(args), dsn=database.admin_dsn, **kwargs)
    return invoke


@pytest.fixture
def dba(database: TestDatabase) -> Invoke:
    """Invoke the command line as the superuser (the DBA) on a fresh migrated database."""
    def invoke(*args: str, **kwargs: Any) -> Result:
        return run(list(args), dsn=database.superuser_dsn, **kwargs)
    return invoke
