"""`sessions open --scope` refuses a scope that exists nowhere, as `tools enable` refuses an
undefined tool: the error names the scopes that do exist, and no session is opened."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from cryptography.hazmat.primitives.asymmetric import ec

from tests import factories
from tests.cli.conftest import Invoke, ok
from tests.cli.test_credits_sessions import signing_key, tenant
from tests.pg import TestDatabase

__all__ = ["signing_key", "tenant"]  # fixtures shared with test_credits_sessions


def open_with(admin: Invoke, tenant: factories.Tenant, key: Path, *scopes: str) -> Result:
    flags = [a for s in scopes for a in ("--scope", s)]
    return admin("sessions", "open", str(tenant.org_id), "--operator", str(tenant.operator_id),
                 "--connector", str(tenant.connector_id), "--customer", str(tenant.customer_id),
                 *flags, "--signing-key", str(key))


def sessions_of(database: TestDatabase, tenant: factories.Tenant) -> int:
    with database.connect() as conn:
        row = conn.execute("select count(*) from tenantgate.sessions where org_id = %s",
                           (tenant.org_id,)).fetchone()
    return int(row[0]) if row else 0


def test_a_scope_that_exists_nowhere_is_refused_naming_the_known_ones(
        database: TestDatabase, admin: Invoke, tenant: factories.Tenant,
        signing_key: tuple[Path, ec.EllipticCurvePublicKey]) -> None:
    result = open_with(admin, tenant, signing_key[0], "read:tickets", "read:tikcets")
    assert result.exit_code == 1
    stderr = result.stderr
    assert "no such scope 'read:tikcets'" in stderr
    assert "read:tickets" in stderr.split("known scopes:", 1)[1]  # catalog rows
    assert "read:pii" in stderr  # data-class rules (scope_classes)
    assert result.stdout == ""
    assert sessions_of(database, tenant) == 0


def test_scopes_named_by_a_catalog_row_or_a_data_class_rule_open_a_session(
        database: TestDatabase, admin: Invoke, tenant: factories.Tenant,
        signing_key: tuple[Path, ec.EllipticCurvePublicKey]) -> None:
    ok(open_with(admin, tenant, signing_key[0], "read:tickets", "read:pii"))
    ok(open_with(admin, tenant, signing_key[0]))
    assert sessions_of(database, tenant) == 2
