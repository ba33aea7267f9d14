"""The whole credential path on a server logging every statement: no key shows up anywhere.

Searched: the PostgreSQL server log (log_statement=all, bind parameters included),
pg_stat_statements, every Python log record at DEBUG (psycopg, httpx, httpcore), stdout/stderr,
exception texts and reprs, and the results handed back. Searched for: both encryption keys and both
customers' API keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import psycopg
import pytest

from tenantgate.cli import pgserver
from tenantgate.mediator import pgp
from tenantgate.mediator import secrets as customer_secrets
from tenantgate.mediator.fake_upstream import FakeBilling
from tenantgate.mediator.keys import FileKeyProvider, Secret, UnknownKeyError
from tenantgate.mediator.upstream import ConnectorTarget, EgressPolicy, UpstreamError, call_upstream
from tests.credentials import conftest
from tests.credentials.conftest import World, build_world
from tests.pg import TestDatabase

VERIFY = (
    "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true), "
    "set_config('app.session_secret', %s, true)"
)


def mediator_call(
    world: World, keys: FileKeyProvider, fake: FakeBilling, who: str, path: str
) -> tuple[str, Any]:
    """What the gate does for an HTTP-backed tool: read the credential, call, return the result."""
    customer = world.acme if who == "acme" else world.beta
    session = world.open_session(customer)
    with psycopg.connect(world.db.superuser_dsn) as conn, conn.transaction():
        conn.execute(VERIFY, (str(customer.org_id), str(customer.customer_id), session))
        credential = customer_secrets.read_upstream_credential(conn, keys)
    target = ConnectorTarget.from_credential(credential)
    egress = EgressPolicy.parse(fake.base_url)
    try:
        result: Any = asyncio.run(call_upstream(target, credential.api_key, path, egress=egress))
    except UpstreamError as exc:
        result = exc
    return repr(credential), result


def test_no_key_appears_in_logs_statements_errors_or_results(
    logged_server: pgserver.RunningServer,
    logged_database: TestDatabase,
    keys: FileKeyProvider,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    with psycopg.connect(logged_database.superuser_dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pg_stat_statements")
    with FakeBilling({}) as fake:
        world = build_world(logged_database, keys, fake.base_url)
        fake.add_account(world.acme.api_key.reveal(), {"customer": "Acme", "plan": "pro"})
        fake.add_account(world.beta.api_key.reveal(), {"customer": "Beta", "plan": "starter"})
        shown: list[str] = []
        for who, path in [
            ("acme", "/v1/billing/status"),
            ("beta", "/v1/billing/status"),
            ("acme", "/v1/echo"),
            ("beta", "/v1/redirect"),
            ("acme", "/v1/nope"),
        ]:
            credential_repr, result = mediator_call(world, keys, fake, who, path)
            shown += [credential_repr, repr(result), str(result)]
        received = fake.received
        acme_call, beta_call = [r for r in received if r.path == "/v1/billing/status"]
        assert acme_call.headers["authorization"] == f"Bearer {world.acme.api_key.reveal()}"
        assert beta_call.headers["authorization"] == f"Bearer {world.beta.api_key.reveal()}"
        assert world.beta.api_key.reveal() not in repr(acme_call)  # Acme never carried Beta's key
        assert world.acme.api_key.reveal() not in repr(beta_call)

        with psycopg.connect(logged_database.admin_dsn, autocommit=True) as conn:
            customer_secrets.rotate(conn, keys, "k2", batch_size=1)
            ids = (world.acme.org_id, world.acme.customer_id)
            for bad_key_id in ("k1", "k9"):
                conn.execute(
                    "update tenantgate.customer_secrets set key_id = %s "
                    "where org_id = %s and customer_id = %s",
                    (bad_key_id, *ids),
                )
                with pytest.raises((pgp.DecryptionError, UnknownKeyError)) as caught:
                    customer_secrets.read_secret(conn, keys, *ids)
                shown += [str(caught.value), repr(caught.value)]
        shown += [repr(keys), str(keys.get("k1")), repr(world.acme.api_key)]

    marker = f"leak-test-done-{uuid.uuid4()}"
    with psycopg.connect(logged_database.superuser_dsn, autocommit=True) as conn:
        statements = [str(r[0]) for r in conn.execute("select query from pg_stat_statements")]
        conn.execute("select %s::text", (marker,))
    server_log = conftest.server_log(logged_server)
    for _ in range(50):  # the logging collector writes asynchronously: wait for our marker
        if marker in server_log:
            break
        time.sleep(0.1)
        server_log = conftest.server_log(logged_server)
    assert marker in server_log
    captured = capfd.readouterr()
    haystacks = {
        "server log": server_log,
        "pg_stat_statements": "\n".join(statements),
        "python logs": caplog.text + "\n".join(r.getMessage() for r in caplog.records),
        "stdout/stderr": captured.out + captured.err,
        "errors, reprs and results": "\n".join(shown),
    }
    # the searches are meaningful: the statements were logged and the keys were really used
    assert "tenantgate.customer_secrets" in server_log
    assert "parameters: $1 = " in server_log.lower()  # bind values are logged
    assert "[redacted]" in haystacks["errors, reprs and results"]  # the echo was scrubbed
    assert "current_upstream_credential" in haystacks["pg_stat_statements"]
    assert "'customer': 'Acme'" in haystacks["errors, reprs and results"]
    assert any(world.acme.api_key.reveal() in str(r.headers) for r in received)

    needles: dict[str, Secret] = {
        "encryption key k1": keys.get("k1"),
        "encryption key k2": keys.get("k2"),
        "acme api key": world.acme.api_key,
        "beta api key": world.beta.api_key,
    }
    leaks = [
        f"{name} in {where}"
        for name, needle in needles.items()
        for where, text in haystacks.items()
        if needle.reveal() in text
    ]
    assert leaks == []
