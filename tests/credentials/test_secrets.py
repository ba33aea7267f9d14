"""mediator.secrets on a migrated database: only ciphertext reaches SQL, each tenant its own key."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar

import psycopg
import pytest
from psycopg.rows import dict_row

from tenantgate.mediator import pgp
from tenantgate.mediator import secrets as customer_secrets
from tenantgate.mediator.keys import FileKeyProvider, Secret, UnknownKeyError
from tests.credentials.conftest import Customer, World, build_world
from tests.pg import TestDatabase

BASE_URL = "http://127.0.0.1:9/billing"
VERIFY = (
    "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true), "
    "set_config('app.session_secret', %s, true)"
)


@pytest.fixture
def world(database: TestDatabase, keys: FileKeyProvider) -> World:
    return build_world(database, keys, BASE_URL)


def as_mediator(
    world: World, customer: Customer, session_secret: str, keys: FileKeyProvider
) -> customer_secrets.UpstreamCredential:
    """current_upstream_credential() with a session's context, as its owner calls it: since the
    gate (issue 9) the mediator gets the sealed key from tenantgate.call_tool, not from here."""
    with psycopg.connect(world.db.superuser_dsn) as conn, conn.transaction():
        conn.execute(VERIFY, (str(customer.org_id), str(customer.customer_id), session_secret))
        return customer_secrets.read_upstream_credential(conn, keys)


def test_admin_stores_and_reads_back_a_secret(world: World, keys: FileKeyProvider) -> None:
    with psycopg.connect(world.db.admin_dsn, autocommit=True) as conn:
        secret = customer_secrets.read_secret(conn, keys, world.acme.org_id, world.acme.customer_id)
        row = conn.execute(
            "select key_id, rotated_at from tenantgate.customer_secrets where customer_id = %s",
            (world.acme.customer_id,),
        ).fetchone()
    assert secret == world.acme.api_key
    assert row == ("k1", None)


def test_replacing_a_secret_seals_the_new_value(world: World, keys: FileKeyProvider) -> None:
    new = Secret("sk_live_acme_replacement_0123456789")
    with psycopg.connect(world.db.admin_dsn, autocommit=True) as conn:
        customer_secrets.set_secret(conn, keys, world.acme.org_id, world.acme.customer_id, new)
        assert (
            customer_secrets.read_secret(conn, keys, world.acme.org_id, world.acme.customer_id)
            == new
        )
        row = conn.execute(
            "select count(*), bool_and(rotated_at is not null) from tenantgate.customer_secrets "
            "where customer_id = %s",
            (world.acme.customer_id,),
        ).fetchone()
    assert row == (1, True)


def test_a_dba_can_decrypt_a_stored_secret_with_pgcrypto(
    world: World, keys: FileKeyProvider
) -> None:
    with psycopg.connect(world.db.superuser_dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pgcrypto")
        row = conn.execute(
            "select pgp_sym_decrypt(ciphertext, %s) from tenantgate.customer_secrets "
            "where customer_id = %s",
            (keys.get("k1").reveal(), world.beta.customer_id),
        ).fetchone()
    assert row == (world.beta.api_key.reveal(),)


def test_a_row_under_another_or_an_unknown_key_id_is_refused(
    world: World, keys: FileKeyProvider
) -> None:
    with psycopg.connect(world.db.admin_dsn, autocommit=True) as conn:
        ids = (world.acme.org_id, world.acme.customer_id)
        conn.execute(
            "update tenantgate.customer_secrets set key_id = 'k2' "
            "where org_id = %s and customer_id = %s",
            ids,
        )
        with pytest.raises(pgp.DecryptionError) as wrong:
            customer_secrets.read_secret(conn, keys, *ids)
        conn.execute(
            "update tenantgate.customer_secrets set key_id = 'k9' "
            "where org_id = %s and customer_id = %s",
            ids,
        )
        with pytest.raises(UnknownKeyError, match="'k9'") as unknown:
            customer_secrets.read_secret(conn, keys, *ids)
    for error in (wrong.value, unknown.value):
        text = f"{error} {error!r}"
        assert world.acme.api_key.reveal() not in text
        assert all(keys.get(k).reveal() not in text for k in keys.key_ids())


def test_a_missing_secret_says_how_to_set_one(world: World, keys: FileKeyProvider) -> None:
    with (
        psycopg.connect(world.db.admin_dsn, autocommit=True) as conn,
        pytest.raises(customer_secrets.SecretNotFoundError, match="tenantgate secrets set"),
    ):
        customer_secrets.read_secret(conn, keys, world.acme.org_id, uuid.uuid4())


def test_a_secret_for_an_unknown_customer_is_refused(world: World, keys: FileKeyProvider) -> None:
    with (
        psycopg.connect(world.db.admin_dsn, autocommit=True) as conn,
        pytest.raises(customer_secrets.UnknownCustomerError, match="customer list"),
    ):
        customer_secrets.set_secret(
            conn, keys, world.acme.org_id, world.beta.customer_id, world.acme.api_key
        )


def test_the_credential_function_reads_exactly_the_verified_customers_credential(
    world: World, keys: FileKeyProvider
) -> None:
    acme_session = world.open_session(world.acme)
    beta_session = world.open_session(world.beta)
    acme = as_mediator(world, world.acme, acme_session, keys)
    beta = as_mediator(world, world.beta, beta_session, keys)
    assert (acme.api_key, acme.customer_id) == (world.acme.api_key, world.acme.customer_id)
    assert (beta.api_key, beta.customer_id) == (world.beta.api_key, world.beta.customer_id)
    assert (acme.base_url, acme.auth_header) == (BASE_URL, "Authorization")


@pytest.mark.parametrize("tamper", ["no settings", "other customer", "other org", "bad secret"])
def test_the_credential_function_reads_nothing_without_a_matching_session(
    world: World, keys: FileKeyProvider, tamper: str
) -> None:
    acme_session = world.open_session(world.acme)
    org, customer, secret = str(world.acme.org_id), str(world.acme.customer_id), acme_session
    if tamper == "other customer":
        customer = str(world.beta.customer_id)
    elif tamper == "other org":
        org = str(world.beta.org_id)
    elif tamper == "bad secret":
        secret = acme_session + "x"
    with psycopg.connect(world.db.superuser_dsn) as conn, conn.transaction():
        if tamper != "no settings":
            conn.execute(VERIFY, (org, customer, secret))
        with pytest.raises(customer_secrets.SecretNotFoundError):
            customer_secrets.read_upstream_credential(conn, keys)


def test_the_mediator_may_not_call_the_credential_function(
    world: World, keys: FileKeyProvider
) -> None:
    session = world.open_session(world.acme)
    with (
        psycopg.connect(world.db.mediator_dsn) as conn,
        conn.transaction(),
    ):
        conn.execute(VERIFY, (str(world.acme.org_id), str(world.acme.customer_id), session))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            customer_secrets.read_upstream_credential(conn, keys)


def test_the_mediator_cannot_read_the_secrets_table(world: World) -> None:
    with (
        psycopg.connect(world.db.mediator_dsn) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("select ciphertext from tenantgate.customer_secrets")


def test_the_async_read_matches_the_sync_one(world: World, keys: FileKeyProvider) -> None:
    session = world.open_session(world.beta)

    async def read() -> customer_secrets.UpstreamCredential:
        conn = await psycopg.AsyncConnection.connect(world.db.superuser_dsn)
        async with conn, conn.transaction():
            await conn.execute(
                VERIFY, (str(world.beta.org_id), str(world.beta.customer_id), session)
            )
            return await customer_secrets.aread_upstream_credential(conn, keys)

    assert asyncio.run(read()).api_key == world.beta.api_key


class RecordingCursor(psycopg.Cursor[Any]):
    """Remembers every statement and parameter this connection sends."""

    sent: ClassVar[list[str]] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        RecordingCursor.sent.append(f"{query!s} {params!r}")
        return super().execute(query, params, **kwargs)


def test_no_key_material_or_plaintext_is_ever_sent_to_sql(
    world: World, keys: FileKeyProvider
) -> None:
    RecordingCursor.sent = []
    with psycopg.connect(
        world.db.admin_dsn, autocommit=True, cursor_factory=RecordingCursor
    ) as conn:
        customer_secrets.set_secret(
            conn, keys, world.acme.org_id, world.acme.customer_id, world.acme.api_key
        )
        customer_secrets.read_secret(conn, keys, world.acme.org_id, world.acme.customer_id)
        customer_secrets.rotate(conn, keys, "k2")
    sent = "\n".join(RecordingCursor.sent)
    assert "tenantgate.customer_secrets" in sent
    assert world.acme.api_key.reveal() not in sent
    assert all(keys.get(k).reveal() not in sent for k in keys.key_ids())


def test_connections_with_any_row_factory_work(world: World, keys: FileKeyProvider) -> None:
    session = world.open_session(world.acme)
    with psycopg.connect(world.db.superuser_dsn, row_factory=dict_row) as conn, conn.transaction():
        conn.execute(VERIFY, (str(world.acme.org_id), str(world.acme.customer_id), session))
        assert customer_secrets.read_upstream_credential(conn, keys).api_key == world.acme.api_key
    with psycopg.connect(world.db.admin_dsn, autocommit=True, row_factory=dict_row) as conn:
        ids = (world.beta.org_id, world.beta.customer_id)
        assert customer_secrets.read_secret(conn, keys, *ids) == world.beta.api_key
        assert customer_secrets.rotate(conn, keys, "k2").rotated == 2
