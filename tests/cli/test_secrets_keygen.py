"""`tenantgate secrets keygen`: a new key file, mode 0600, its key id printed, never the key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tenantgate.mediator.keys import FileKeyProvider
from tests import factories
from tests.cli.conftest import Invoke, as_json, ok, run
from tests.pg import TestDatabase


def material_of(path: Path, key_id: str) -> str:
    return FileKeyProvider.from_file(path, key_id).get(key_id).reveal()


def test_keygen_writes_a_0600_key_file_and_prints_only_the_key_id(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    result = ok(run(["secrets", "keygen", "--file", str(path)]))
    key_id = result.stdout.strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    material = material_of(path, key_id)  # loads the way the mediator loads it
    assert len(material) >= 32
    assert material not in result.output
    assert key_id.startswith("k")
    assert f"TENANTGATE_SECRET_KEY_CURRENT={key_id}" in result.stderr


def test_keygen_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        ok(run(["secrets", "keygen", "--file", str(tmp_path / "keys"), "--key-id", "k1"]))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o600


def test_keygen_never_overwrites_and_appends_a_second_key_for_rotation(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    ok(run(["secrets", "keygen", "--file", str(path), "--key-id", "k1"]))
    first = material_of(path, "k1")
    again = run(["secrets", "keygen", "--file", str(path), "--key-id", "k9"])
    assert again.exit_code == 2
    assert "--append" in again.stderr
    added = as_json(run(["secrets", "keygen", "--file", str(path), "--key-id", "k2", "--append",
                         "--json"]))
    assert added == {"key_id": "k2", "file": str(path)}
    provider = FileKeyProvider.from_file(path, "k2")
    assert provider.key_ids() == {"k1", "k2"}
    assert provider.get("k1").reveal() == first  # the old key is still there for rotation
    assert provider.get("k2").reveal() != first


@pytest.mark.parametrize(("args", "message"), [
    (["--key-id", "k1", "--append"], "already in"),
    (["--key-id", "bad id!"], "must match"),
])
def test_keygen_refuses_bad_key_ids(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "keys"
    ok(run(["secrets", "keygen", "--file", str(path), "--key-id", "k1"]))
    before = path.read_text()
    result = run(["secrets", "keygen", "--file", str(path), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert path.read_text() == before


def test_keygen_refuses_to_append_to_a_file_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    ok(run(["secrets", "keygen", "--file", str(path), "--key-id", "k1"]))
    path.chmod(0o644)
    result = run(["secrets", "keygen", "--file", str(path), "--append"])
    assert result.exit_code == 2
    assert "chmod 600" in result.stderr


def test_a_generated_key_seals_and_opens_a_customer_secret(
        database: TestDatabase, admin: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "keys"
    key_id = ok(run(["secrets", "keygen", "--file", str(path)])).stdout.strip()
    env: dict[str, str | None] = {"TENANTGATE_SECRET_KEYS_FILE": str(path),
                                  "TENANTGATE_SECRET_KEY_CURRENT": key_id}
    tenant = factories.add_tenant(database)
    org, customer = str(tenant.org_id), str(tenant.customer_id)
    stored = as_json(admin("secrets", "set", org, customer, "--json",
                           input="sk_live_generated_key_check\n", env=env))
    assert stored["key_id"] == key_id
    assert as_json(admin("secrets", "check", org, customer, "--json", env=env))["readable"]
