"""Alembic environment: the connection URL comes from DATABASE_URL, never from a committed file."""

from __future__ import annotations

import logging
import os
import sys

import sqlalchemy as sa
from alembic import context

if not logging.getLogger().handlers:
    # Say which revision runs, on stderr, as `alembic` does with its default ini.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)


def database_url() -> str:
    """DATABASE_URL as a SQLAlchemy URL for psycopg 3."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit(
            "DATABASE_URL is not set: export DATABASE_URL=postgresql://user@host/dbname "
            "(a role that may create roles and schemas) and run again"
        )
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def run_offline() -> None:
    """Print the SQL a DBA reviews, without touching any database."""
    context.configure(
        url=(os.environ.get("DATABASE_URL") and database_url()) or "postgresql+psycopg://",
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Apply the migrations, one transaction per revision."""
    engine = sa.create_engine(database_url(), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
