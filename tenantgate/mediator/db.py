"""The database side of the mediator: the pool and the transaction-local context."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, LiteralString

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

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


class MediatorPool(AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """psycopg's pool, with the callers beyond its size queued in a plain FIFO before it.

    psycopg_pool queues a caller that finds no free connection with a task and a timed condition
    of its own: at 32 callers on 16 connections that cost about 90 us of the mediator's CPU per
    call, a quarter of it (bench/mcp_e2e.py, side by side). Callers
    take a turn here first (`take_turn`, then `give_turn` when the connection is back), so the
    pool itself always has one ready. The wait keeps the pool's timeout and its error. The number
    waiting is in the pool's statistics as `calls_waiting` (its own `requests_waiting` stays 0).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns = asyncio.Semaphore(self.max_size)
        self.calls_waiting = 0

    async def take_turn(self) -> float:
        """Wait until a connection is free, within the pool's timeout (past it, PoolTimeout, as
        the pool raises). Returns the time left for `connection(timeout)`."""
        timeout = self.timeout
        if not self._turns.locked():
            await self._turns.acquire()  # returns at once
            return timeout
        started = time.monotonic()
        self.calls_waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await self._turns.acquire()
        except TimeoutError:
            raise PoolTimeout(f"no connection free after {timeout:.2f} s") from None
        finally:
            self.calls_waiting -= 1
        return max(0.001, timeout - (time.monotonic() - started))

    def give_turn(self) -> None:
        self._turns.release()

    def get_stats(self) -> dict[str, int]:
        return {**super().get_stats(), "calls_waiting": self.calls_waiting}


def make_pool(
    settings: Settings,
    *,
    dsn: str | None = None,
    open: bool = False,
    min_size: int | None = None,
    max_size: int | None = None,
) -> MediatorPool:
    """An async pool of autocommit connections; the gate opens its own transactions."""

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        conn.prepare_threshold = settings.prepare_threshold
        if settings.statement_timeout_ms:
            await conn.execute(
                "select set_config('statement_timeout', %s, false)",
                (str(settings.statement_timeout_ms),),
            )

    return MediatorPool(
        dsn or settings.database_url.get_secret_value(),
        min_size=min_size or settings.pool_min_size,
        max_size=max(max_size or settings.pool_max_size, min_size or settings.pool_min_size),
        timeout=settings.pool_timeout,
        kwargs={"autocommit": True, "prepare_threshold": settings.prepare_threshold},
        configure=configure,
        open=open,
        name="tenantgate-mediator",
    )
