"""The database side of the mediator: the pool and the transaction-local context."""

from __future__ import annotations

import logging
from typing import Any, LiteralString

import psycopg
from psycopg_pool import AsyncConnectionPool

from tenantgate.mediator.settings import Settings

logger = logging.getLogger("tenantgate.db")

# Transaction-local (the `true`): a pooled connection never carries them to the next client.
SET_CONTEXT: LiteralString = (
    "select set_config('app.org_id', %(org)s, true), "
    "set_config('app.customer_id', %(cust)s, true), "
    "set_config('app.session_secret', %(secret)s, true)"
)


def sql_context() -> LiteralString:
    return SET_CONTEXT


def make_pool(
    settings: Settings,
    *,
    dsn: str | None = None,
    open: bool = False,
    min_size: int | None = None,
    max_size: int | None = None,
) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    """An async pool of autocommit connections; the gate opens its own transactions."""

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        conn.prepare_threshold = settings.prepare_threshold
        if settings.statement_timeout_ms:
            await conn.execute(
                "select set_config('statement_timeout', %s, false)",
                (str(settings.statement_timeout_ms),),
            )

    return AsyncConnectionPool(
        dsn or settings.database_url.get_secret_value(),
        min_size=min_size or settings.pool_min_size,
        max_size=max(max_size or settings.pool_max_size, min_size or settings.pool_min_size),
        timeout=settings.pool_timeout,
        kwargs={"autocommit": True, "prepare_threshold": settings.prepare_threshold},
        configure=configure,
        open=open,
        name="tenantgate-mediator",
    )
