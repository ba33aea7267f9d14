"""`tenantgate secrets`: set from stdin or a file, check, rotate with a progress bar."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantgate.mediator.keys import generate_key_material
from tests import factories
from tests.cli.conftest import Invoke, as_json, ok
from tests.pg import TestDatabase

API_KEY = "sk_live_globex_0123456789"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str | None]:
    path = tmp_path / "keys"
    path.write_text(f"k1:{generate_key_material().reveal()}\n"
                    f"k2:{generate_key_material().reveal()}\n")
    path.chmod(0o600)
    return {"TENANTGATE_SECRET_KEYS_FILE": str(path), "TENANTGATE_SECRET_KEY_CURRENT": "k1"}


def test_set_reads_the_key_from_stdin_and_stores_only_ciphertext(
        database: TestDatabase, admin: Invoke, keys: dict[str, str | None]) -> None:
    tenant = factories.add_tenant(database)
    org, customer = str(tenant.org_id), str(tenant.customer_id)
    result = ok(admin("secrets", "set", org, customer, input=API_KEY + "\n", env=keys))
    assert API_KEY not in result.output
    with database.connect() as conn:
        row = conn.execute("select ciphertext, key_id from tenantgate.customer_secrets"
                           " where customer_id = %s", (tenant.customer_id,)).fetchone()
    assert row is not None
    assert API_KEY.encode() not in bytes(row[0])
    assert row[1] == "k1"
    checked = as_json(admin("secrets", "check", org, customer, "--json", env=keys))
    assert checked["length"] == len(API_KEY)


def test_set_from_a_file_and_rotate_to_a_new_key(database: TestDatabase, admin: Invoke,
                                                 keys: dict[str, str | None],
                                                 tmp_path: Path) -> None:
    tenants = [factories.add_tenant(database) for _ in range(3)]
    key_file = tmp_path / "api-key.txt"
    key_file.write_text(API_KEY)
    for t in tenants:
        ok(admin("secrets", "set", str(t.org_id), str(t.customer_id), "--from-file",
                 str(key_file), env=keys))
    report = as_json(admin("secrets", "rotate", "--to", "k2", "--batch-size", "2", "--json",
                           env=keys))
    assert (report["rotated"], report["remaining"]) == (3, 0)
    with database.connect() as conn:
        ids = conn.execute("select distinct key_id from tenantgate.customer_secrets").fetchall()
    assert ids == [("k2",)]
    ok(admin("secrets", "check", str(tenants[0].org_id), str(tenants[0].customer_id), env=keys))


def test_secret_is_never_an_argument_and_empty_input_is_refused(
        database: TestDatabase, admin: Invoke, keys: dict[str, str | None]) -> None:
    tenant = factories.add_tenant(database)
    extra = admin("secrets", "set", str(tenant.org_id), str(tenant.customer_id), API_KEY,
                  env=keys)
    assert extra.exit_code == 2
    empty = admin("secrets", "set", str(tenant.org_id), str(tenant.customer_id), input="",
                  env=keys)
    assert empty.exit_code == 2
    assert "no secret on input" in empty.stderr


def test_missing_key_configuration_is_a_usage_error(database: TestDatabase,
                                                    admin: Invoke) -> None:
    tenant = factories.add_tenant(database)
    result = admin("secrets", "set", str(tenant.org_id), str(tenant.customer_id), input="x")
    assert result.exit_code == 2
    assert "TENANTGATE_SECRET_KEY_CURRENT" in result.stderr


def test_rotating_to_an_unknown_key_changes_nothing(admin: Invoke,
                                                    keys: dict[str, str | None]) -> None:
    result = admin("secrets", "rotate", "--to", "k9", env=keys)
    assert result.exit_code == 2
    assert "k9" in result.stderr
