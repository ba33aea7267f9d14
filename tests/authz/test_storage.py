"""What the database keeps of codes and refresh tokens, who reads it, how long tokens live."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from tenantgate.mediator.tokens import TokenVerifier
from tests.authz.helpers import get_code, redeem, register, token
from tests.authz.stack import Browser, Stack
from tests.pg import TestDatabase


def _everything(db: TestDatabase) -> str:
    with db.connect() as conn:
        rows = conn.execute(
            "select to_jsonb(c)::text from tenantgate.oauth_codes c union all "
            "select to_jsonb(r)::text from tenantgate.oauth_refresh_tokens r union all "
            "select to_jsonb(s)::text from tenantgate.sessions s").fetchall()
    return "\n".join(r[0] for r in rows)


def test_codes_refresh_tokens_and_session_secrets_are_stored_only_as_hashes(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    body = redeem(stack, client_id, code, verifier).json()
    secret = TokenVerifier(stack.mediator_settings).verify(body["access_token"]).session_secret
    dump = _everything(database)
    for value in (code, body["refresh_token"], secret):
        assert value not in dump
    with database.connect() as conn:
        row = conn.execute("select count(*) from tenantgate.oauth_refresh_tokens"
                           " where token_hash = %s",
                           (hashlib.sha256(body["refresh_token"].encode()).digest(),)).fetchone()
    assert row == (1,)


@pytest.mark.parametrize("table", ["oauth_clients", "oauth_codes", "oauth_refresh_tokens"])
@pytest.mark.parametrize("role", ["tenantgate_session_manager", "tenantgate_mediator",
                                  "tenantgate_admin"])
def test_no_login_role_reads_the_authorization_tables_directly(
    database: TestDatabase, role: str, table: str
) -> None:
    with database.connect(role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"select * from tenantgate.{table}")


def test_the_mediator_cannot_call_the_authorization_servers_functions(
    database: TestDatabase,
) -> None:
    with database.connect("tenantgate_mediator") as conn, pytest.raises(
        psycopg.errors.InsufficientPrivilege
    ):
        conn.execute("select * from tenantgate.authz_operator_by_email('csm@northwind.example')")


def test_refresh_never_outlives_the_session(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    body = redeem(stack, client_id, code, verifier).json()
    with database.connect() as conn:
        conn.execute("update tenantgate.sessions set expires_at = now() + interval '10 minutes'")
    shorter = token(stack, grant_type="refresh_token", refresh_token=body["refresh_token"],
                    client_id=client_id).json()
    assert 0 < shorter["expires_in"] <= 600
    with database.connect() as conn:
        conn.execute("update tenantgate.sessions set expires_at = created_at + interval '1 ms'")
    r = token(stack, grant_type="refresh_token", refresh_token=shorter["refresh_token"],
              client_id=client_id)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
