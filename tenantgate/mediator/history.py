"""Chat history of the host's own session: RLS-scoped, gone when the session ends or expires."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from tenantgate.mediator.db import sql_context
from tenantgate.mediator.tokens import Claims

Role = Literal["user", "assistant", "tool", "system"]


@dataclass(frozen=True, slots=True)
class Message:
    message_id: int
    role: str
    content: str
    created_at: dt.datetime


class History:
    """Append to and read the verified session's history; another session's rows are invisible."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def append(self, claims: Claims, role: Role, content: str) -> int | None:
        """Append one message; None when the session is not live (nothing is written)."""
        async with self.pool.connection() as conn, conn.pipeline():
            await conn.execute(sql_context(), _ctx(claims))
            cur = await conn.execute(
                "insert into tenantgate.session_messages (org_id, session_id, role, content)"
                " select c.org_id, c.session_id, %s, %s from tenantgate.session_context() c"
                " returning message_id",
                (role, content),
            )
        row = await cur.fetchone()
        return int(row[0]) if row else None

    async def read(self, claims: Claims, limit: int = 100) -> list[Message]:
        async with self.pool.connection() as conn, conn.pipeline():
            await conn.execute(sql_context(), _ctx(claims))
            cur = await conn.cursor(row_factory=class_row(Message)).execute(
                "select message_id, role, content, created_at from tenantgate.session_messages"
                " where org_id = %s and session_id = %s order by message_id limit %s",
                (claims.org_id, claims.session_id, limit),
            )
        rows: list[Message] = await cur.fetchall()
        return rows


def _ctx(c: Claims) -> dict[str, str]:
    return {"org": c.org_id, "cust": c.customer_id, "secret": c.session_secret}
