"""`tenantgate secrets rotate` while sessions are live: HTTP tool calls go on with the right key."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import psycopg
from psycopg.rows import tuple_row

from tenantgate.mediator import secrets as customer_secrets
from tenantgate.mediator.fake_upstream import FakeBilling
from tenantgate.mediator.http_call import call_http_tool
from tenantgate.mediator.keys import FileKeyProvider, Secret, generate_key_material
from tenantgate.mediator.upstream import EgressPolicy, UpstreamClient
from tests.cli.conftest import ok, run
from tests.credentials.conftest import Customer, World, build_world
from tests.credentials.http_world import POLICY, TOOLS
from tests.pg import TestDatabase

VERIFY = (
    "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true), "
    "set_config('app.session_secret', %s, true)"
)
FILLER = 400  # other customers' secrets, so that the rotation spans many batches


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    path.write_text(
        f"k1:{generate_key_material().reveal()}\nk2:{generate_key_material().reveal()}\n"
    )
    path.chmod(0o600)
    return path


def add_filler(
    db: TestDatabase, keys: FileKeyProvider, org_id: object, connector_id: object
) -> None:
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "insert into tenantgate.customer_accounts (org_id, connector_id, name) "
            "select %s, %s, 'filler ' || n from generate_series(1, %s) n returning customer_id",
            (org_id, connector_id, FILLER),
        ).fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                "insert into tenantgate.customer_secrets (org_id, customer_id, ciphertext, key_id) "
                "values (%s, %s, %s, %s)",
                [
                    (org_id, r[0], *customer_secrets.seal(Secret(f"sk_filler_{r[0]}"), keys))
                    for r in rows
                ],
            )


def tool_call(
    world: World, customer: Customer, session: str, keys: FileKeyProvider, fake: FakeBilling
) -> tuple[str, str]:
    """What the gate does for an HTTP tool in a live session: read the row, decrypt, call."""
    with psycopg.connect(world.db.superuser_dsn) as conn, conn.transaction():
        conn.execute(VERIFY, (str(customer.org_id), str(customer.customer_id), session))
        row = (
            conn.cursor(row_factory=tuple_row)
            .execute("select key_id from tenantgate.current_upstream_credential()")
            .fetchone()
        )
        credential = customer_secrets.read_upstream_credential(conn, keys)
    assert row is not None
    assert credential.base_url is not None

    async def go() -> str:
        async with UpstreamClient(EgressPolicy.parse(fake.base_url)) as client:
            outcome = await call_http_tool(
                TOOLS["get_billing_status"],
                {},
                base_url=credential.base_url or "",
                auth_header=credential.auth_header,
                key=credential.api_key,
                client=client,
                policy=POLICY,
                scopes=["read:billing"],
            )
        return str(outcome.result["customer"])

    return str(row[0]), asyncio.run(go())


def test_rotation_during_live_sessions_changes_nothing_for_the_caller(
    database: TestDatabase, tmp_path: Path
) -> None:
    path = key_file(tmp_path)
    keys = FileKeyProvider.from_file(path, "k1")  # the mediator holds both keys during rotation
    with FakeBilling({}) as fake:
        world = build_world(database, keys, fake.base_url)
        add_filler(database, keys, world.acme.org_id, world.acme.connector_id)
        for customer in (world.acme, world.beta):
            fake.add_account(customer.api_key.reveal(), {"customer": customer.name})
        sessions = {c.name: (c, world.open_session(c)) for c in (world.acme, world.beta)}
        seen: list[tuple[str, str, str]] = []  # (who, key id of the row, customer answered)
        failures: list[BaseException] = []
        rotated = threading.Event()
        started = threading.Event()

        def live_session() -> None:
            after = 0
            try:
                while after < 4:
                    for name, (customer, session) in sessions.items():
                        key_id, answered = tool_call(world, customer, session, keys, fake)
                        seen.append((name, key_id, answered))
                    started.set()
                    after += rotated.is_set()
            except BaseException as exc:
                failures.append(exc)
                started.set()

        worker = threading.Thread(target=live_session)
        worker.start()
        started.wait(timeout=60)
        env: dict[str, str | None] = {
            "TENANTGATE_SECRET_KEYS_FILE": str(path),
            "TENANTGATE_SECRET_KEY_CURRENT": "k2",
        }
        result = ok(
            run(
                ["secrets", "rotate", "--batch-size", "5", "--json"],
                dsn=database.admin_dsn,
                env=env,
            )
        )
        rotated.set()
        worker.join(timeout=120)
    assert failures == []
    assert '"remaining": 0' in result.stdout
    assert all(who == answered for who, _, answered in seen)  # never the other customer's data
    key_ids = [key_id for _, key_id, _ in seen]
    assert key_ids[0] == "k1"
    assert key_ids[-1] == "k2"  # the same live sessions, before and after the rotation
    assert len(fake.received) == len(seen)
    for request in fake.received:
        assert (world.acme.api_key.reveal() in repr(request)) != (
            world.beta.api_key.reveal() in repr(request)
        )
