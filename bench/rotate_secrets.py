"""Time to rotate 10,000 customer secrets to a new key (re-encrypt in Python, batched updates).

    .venv/bin/python bench/rotate_secrets.py [--count 10000] [--batch 100,500,2000]

Uses the tests' throwaway PostgreSQL (TENANTGATE_TEST_DSN / DATABASE_URL, else embedded pg0),
a fresh migrated database per batch size, and prints one line per batch size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tenantgate.mediator import secrets as customer_secrets
from tenantgate.mediator.keys import FileKeyProvider, Secret, generate_key_material
from tests.pg import DatabaseFactory, TestDatabase, throwaway_server


def seed(db: TestDatabase, keys: FileKeyProvider, count: int) -> None:
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn, conn.transaction():
        row = conn.execute(
            "with o as (insert into tenantgate.orgs (name) values ('Bench') returning org_id) "
            "insert into tenantgate.connectors (org_id, name) select org_id, 'billing' from o "
            "returning org_id, connector_id"
        ).fetchone()
        assert row is not None
        org_id, connector_id = row
        customers = conn.execute(
            "insert into tenantgate.customer_accounts (org_id, connector_id, name) "
            "select %s, %s, 'customer ' || n from generate_series(1, %s) n returning customer_id",
            (org_id, connector_id, count),
        ).fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                "insert into tenantgate.customer_secrets (org_id, customer_id, ciphertext, key_id) "
                "values (%s, %s, %s, %s)",
                [
                    (org_id, c[0], *customer_secrets.seal(Secret(f"sk_live_{c[0].hex}"), keys))
                    for c in customers
                ],
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch", default="100,500,2000", help="comma-separated batch sizes")
    args = parser.parse_args()
    keys = FileKeyProvider({"k1": generate_key_material(), "k2": generate_key_material()}, "k1")
    with throwaway_server() as server:
        factory = DatabaseFactory(server)
        factory.prepare()
        try:
            print(f"PostgreSQL {server.version} ({server.kind}), {args.count} secrets")
            for batch in (int(b) for b in args.batch.split(",")):
                db = factory.clone()
                seed(db, keys, args.count)
                with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
                    report = customer_secrets.rotate(conn, keys, "k2", batch_size=batch)
                assert (report.rotated, report.remaining) == (args.count, 0)
                rate = report.rotated / report.seconds
                print(
                    f"rotate {report.rotated} secrets, batch {batch}: "
                    f"{report.seconds:.2f} s ({rate:,.0f} secrets/s)"
                )
                factory.drop(db.name)
        finally:
            factory.drop_all()


if __name__ == "__main__":
    main()
