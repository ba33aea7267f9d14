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
    call, a quarter of it (bench/mcp_e2e.py, side by side). Here `getconn` (and so
    `connection()`) first takes one of `max_size` turns, and `putconn` gives it back, so the pool
    itself always has a connection ready for whoever holds a turn. The wait keeps the pool's
    timeout and its error; the number waiting is in the pool's statistics as `calls_waiting`
    (psycopg's own `requests_waiting` stays at 0).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns = asyncio.Semaphore(self.max_size)
        self.calls_waiting = 0

    async def getconn(self, timeout: float | None = None) -> psycopg.AsyncConnection[Any]:
        left = await self._take_turn(self.timeout if timeout is None else timeout)
        try:
            return await super().getconn(left)
        except BaseException:
            self._turns.release()
            raise

    async def putconn(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await super().putconn(conn)
        finally:
            self._turns.release()

    async def _take_turn(self, timeout: float) -> float:
        """Wait for a turn within `timeout` (past it, PoolTimeout, as the pool raises); the
        time left for the pool to hand the connection over."""
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
