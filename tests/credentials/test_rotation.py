"""Key rotation: online, in batches, resumable after a crash, every secret readable throughout."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from tenantgate.mediator import secrets as customer_secrets
from tenantgate.mediator.keys import FileKeyProvider, Secret, UnknownKeyError
from tests.pg import TestDatabase

Conn = psycopg.Connection[tuple[object, ...]]


class Crash(Exception):
    """Stands for the process dying between two batches."""


def seed_secrets(
    db: TestDatabase, keys: FileKeyProvider, count: int
) -> tuple[uuid.UUID, dict[uuid.UUID, Secret]]:
    """``count`` customers of one org, each with a secret sealed under the current key."""
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "with o as (insert into tenantgate.orgs (name) values ('Rotating') returning org_id) "
            "insert into tenantgate.connectors (org_id, name) select org_id, 'billing' from o "
            "returning org_id, connector_id"
        ).fetchone()
        assert row is not None
        org_id, connector_id = row
        assert isinstance(org_id, uuid.UUID)
        rows = conn.execute(
            "insert into tenantgate.customer_accounts (org_id, connector_id, name) "
            "select %s, %s, 'customer ' || n from generate_series(1, %s) n returning customer_id",
            (org_id, connector_id, count),
        ).fetchall()
        stored = {r[0]: Secret(f"sk_live_{r[0].hex}") for r in rows}  # type: ignore[union-attr]
        with conn.cursor() as cur:
            cur.executemany(
                "insert into tenantgate.customer_secrets (org_id, customer_id, ciphertext, key_id) "
                "values (%s, %s, %s, %s)",
                [(org_id, cid, *customer_secrets.seal(s, keys)) for cid, s in stored.items()],
            )
    return org_id, stored


def read_all(conn: Conn, keys: FileKeyProvider) -> dict[uuid.UUID, Secret]:
    """Every stored secret, decrypted with whatever key its row names."""
    rows = conn.execute(
        "select customer_id, ciphertext, key_id from tenantgate.customer_secrets"
    ).fetchall()
    return {
        cid: customer_secrets.unseal(ct, kid, keys)  # type: ignore[arg-type]
        for cid, ct, kid in rows
    }


def key_counts(conn: Conn) -> dict[str, int]:
    rows = conn.execute(
        "select key_id, count(*) from tenantgate.customer_secrets group by key_id"
    ).fetchall()
    return {str(k): int(n) for k, n in rows}  # type: ignore[call-overload]


def test_rotation_interrupted_halfway_then_resumed_leaves_every_secret_readable(
    database: TestDatabase, keys: FileKeyProvider
) -> None:
    _, stored = seed_secrets(database, keys, 60)
    seen: list[tuple[int, int]] = []

    def crash_after_three_batches(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= 21:
            raise Crash

    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        with pytest.raises(Crash):
            customer_secrets.rotate(
                conn, keys, "k2", batch_size=7, progress=crash_after_three_batches
            )
        assert seen == [(0, 60), (7, 60), (14, 60), (21, 60)]
        assert key_counts(conn) == {"k1": 39, "k2": 21}
        assert read_all(conn, keys) == stored  # half-rotated: every secret still reads

        progress: list[tuple[int, int]] = []
        report = customer_secrets.rotate(
            conn, keys, "k2", batch_size=7, progress=lambda d, t: progress.append((d, t))
        )
        assert (report.rotated, report.remaining) == (39, 0)  # rows on k2 were skipped
        assert progress[0] == (0, 39)
        assert progress[-1] == (39, 39)
        assert key_counts(conn) == {"k2": 60}

        only_new = FileKeyProvider({"k2": keys.get("k2")}, "k2")  # the old key can now go
        assert read_all(conn, only_new) == stored
        again = customer_secrets.rotate(conn, only_new, "k2")
        assert (again.rotated, again.remaining) == (0, 0)


def test_secrets_stay_readable_while_rotation_runs(
    database: TestDatabase, keys: FileKeyProvider
) -> None:
    _, stored = seed_secrets(database, keys, 300)
    failures: list[BaseException] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    assert read_all(conn, keys) == stored
                    reads += 1
                except BaseException as exc:
                    failures.append(exc)
                    return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
            report = customer_secrets.rotate(conn, keys, "k2", batch_size=10)
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert reads >= 1
    assert report.rotated == 300


def test_two_rotations_at_once_share_the_work(
    database: TestDatabase, keys: FileKeyProvider
) -> None:
    _, stored = seed_secrets(database, keys, 200)
    reports: list[customer_secrets.RotationReport] = []

    def rotate() -> None:
        with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
            reports.append(customer_secrets.rotate(conn, keys, "k2", batch_size=5))

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.rotated for r in reports) == 200  # skip locked: no row rotated twice
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        assert key_counts(conn) == {"k2": 200}
        assert read_all(conn, keys) == stored


def test_rotation_to_an_unconfigured_key_changes_nothing(
    database: TestDatabase, keys: FileKeyProvider
) -> None:
    seed_secrets(database, keys, 5)
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        with pytest.raises(UnknownKeyError, match="'k3'"):
            customer_secrets.rotate(conn, keys, "k3")
        assert key_counts(conn) == {"k1": 5}


def test_a_row_whose_key_is_gone_stops_rotation_with_the_customer_named(
    database: TestDatabase, keys: FileKeyProvider
) -> None:
    seed_secrets(database, keys, 5)
    without_k1 = FileKeyProvider({"k2": keys.get("k2")}, "k2")
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        with pytest.raises(customer_secrets.RotationError, match="key 'k1'") as caught:
            customer_secrets.rotate(conn, without_k1, "k2")
        assert key_counts(conn) == {"k1": 5}
    assert keys.get("k1").reveal() not in str(caught.value)
    assert keys.get("k2").reveal() not in str(caught.value)


def test_rotation_refuses_to_run_inside_an_open_transaction(
    database: TestDatabase, keys: FileKeyProvider
) -> None:
    with psycopg.connect(database.admin_dsn) as conn:
        conn.execute("select 1")  # psycopg opened a transaction
        with pytest.raises(ValueError, match="outside any open transaction"):
            customer_secrets.rotate(conn, keys, "k2")
