"""The authorization server's database calls, as tenantgate_session_manager, all parameterised.

Every call goes through a SECURITY DEFINER function of sql/90_authz (or open_session): the role
reads no table directly.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from tenantgate.authz.cimd import Client


@dataclass(frozen=True, slots=True)
class Operator:
    org_id: str
    operator_id: str
    org_name: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Choice:
    connector_id: str
    connector_name: str
    customer_id: str
    customer_name: str
    scopes: list[str]


@dataclass(frozen=True, slots=True)
class LiveSession:
    operator_id: str
    connector_id: str
    customer_id: str
    scopes: list[str]
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Redeemed:
    status: str  # ok | replayed | unknown (codes), ok | reused | unknown (refresh tokens)
    org_id: str | None = None
    session_id: str | None = None
    client_id: str | None = None
    redirect_uri: str | None = None
    code_challenge: str | None = None
    resource: str | None = None
    sealed_secret: bytes | None = None


class Store:
    def __init__(self, dsn: str) -> None:
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            dsn, min_size=1, max_size=8, open=False, kwargs={"autocommit": True}
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    async def _rows(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def operators_by_email(self, email: str) -> list[Operator]:
        rows = await self._rows(
            "select org_id, operator_id, org_name, display_name"
            " from tenantgate.authz_operator_by_email(%s)",
            (email,),
        )
        return [Operator(str(r[0]), str(r[1]), r[2], r[3]) for r in rows]

    async def choices(self, org_id: str, operator_id: str) -> list[Choice]:
        rows = await self._rows(
            "select connector_id, connector_name, customer_id, customer_name, scopes"
            " from tenantgate.authz_consent_choices(%s, %s)",
            (org_id, operator_id),
        )
        return [Choice(str(r[0]), r[1], str(r[2]), r[3], list(r[4])) for r in rows]

    async def register_client(self, client: Client, metadata: dict[str, Any]) -> None:
        await self._rows(
            "select tenantgate.authz_client_register(%s, %s, %s, %s::jsonb)",
            (client.client_id, client.client_name, client.redirect_uris, json.dumps(metadata)),
        )

    async def client(self, client_id: str) -> Client | None:
        rows = await self._rows(
            "select client_name, redirect_uris from tenantgate.authz_client_get(%s)", (client_id,)
        )
        if not rows:
            return None
        return Client(client_id, rows[0][0], list(rows[0][1]), "dcr")

    async def open_session(
        self,
        *,
        org_id: str,
        operator_id: str,
        connector_id: str,
        customer_id: str,
        scopes: list[str],
        ttl_seconds: int,
        secret_hash: bytes,
    ) -> tuple[str, dt.datetime] | None:
        try:
            rows = await self._rows(
                "select session_id, expires_at from tenantgate.open_session("
                "%s, %s, %s, %s, %s, make_interval(secs => %s), %s)",
                (org_id, operator_id, connector_id, customer_id, scopes, ttl_seconds, secret_hash),
            )
        except psycopg.errors.NoDataFound:
            return None
        return str(rows[0][0]), rows[0][1]

    async def end_session(self, org_id: str, session_id: str) -> None:
        await self._rows("select tenantgate.end_session(%s, %s)", (org_id, session_id))

    async def live(self, org_id: str, session_id: str) -> LiveSession | None:
        rows = await self._rows(
            "select operator_id, connector_id, customer_id, scopes, expires_at"
            " from tenantgate.authz_session_live(%s, %s)",
            (org_id, session_id),
        )
        if not rows:
            return None
        r = rows[0]
        return LiveSession(str(r[0]), str(r[1]), str(r[2]), list(r[3]), r[4])

    async def create_code(
        self,
        *,
        code_hash: bytes,
        org_id: str,
        session_id: str,
        client_id: str,
        redirect_uri: str,
        code_challenge: str,
        resource: str,
        sealed_secret: bytes,
        ttl_seconds: int,
    ) -> None:
        await self._rows(
            "select tenantgate.authz_code_create(%s, %s, %s, %s, %s, %s, %s, %s,"
            " make_interval(secs => %s))",
            (
                code_hash,
                org_id,
                session_id,
                client_id,
                redirect_uri,
                code_challenge,
                resource,
                sealed_secret,
                ttl_seconds,
            ),
        )

    async def redeem_code(self, code_hash: bytes) -> Redeemed:
        rows = await self._rows(
            "select status, org_id, session_id, client_id, redirect_uri, code_challenge,"
            " resource, sealed_secret from tenantgate.authz_code_redeem(%s)",
            (code_hash,),
        )
        r = rows[0]
        return Redeemed(
            r[0],
            _s(r[1]),
            _s(r[2]),
            r[3],
            r[4],
            r[5],
            r[6],
            bytes(r[7]) if r[7] is not None else None,
        )

    async def store_refresh(
        self, token_hash: bytes, org_id: str, session_id: str, client_id: str, sealed: bytes
    ) -> None:
        await self._rows(
            "select tenantgate.authz_refresh_store(%s, %s, %s, %s, %s)",
            (token_hash, org_id, session_id, client_id, sealed),
        )

    async def use_refresh(self, token_hash: bytes, client_id: str) -> Redeemed:
        rows = await self._rows(
            "select status, org_id, session_id, sealed_secret"
            " from tenantgate.authz_refresh_use(%s, %s)",
            (token_hash, client_id),
        )
        r = rows[0]
        sealed = bytes(r[3]) if r[3] is not None else None
        return Redeemed(r[0], _s(r[1]), _s(r[2]), client_id, sealed_secret=sealed)

    async def revoke_refresh(self, token_hash: bytes, client_id: str) -> bool:
        rows = await self._rows(
            "select tenantgate.authz_refresh_revoke(%s, %s)", (token_hash, client_id)
        )
        return bool(rows[0][0])

    async def pending_approvals(self, org_id: str, operator_id: str) -> list[dict[str, Any]]:
        rows = await self._rows(
            "select approval_id, tool_name, arguments, preview, customer_name, requested_by,"
            " own_request, created_at from tenantgate.authz_pending_approvals(%s, %s)",
            (org_id, operator_id),
        )
        keys = ("approval_id", "tool_name", "arguments", "preview", "customer_name",
                "requested_by", "own_request", "created_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    async def decide(self, org_id: str, approval_id: str, operator_id: str, approve: bool) -> bool:
        try:
            await self._rows(
                "select tenantgate.approval_decide(%s, %s, %s, %s)",
                (org_id, approval_id, operator_id, approve),
            )
        except psycopg.OperationalError:
            raise
        except psycopg.DatabaseError:  # not pending, not of this org, or the operator's own
            return False
        return True


def _s(value: Any) -> str | None:
    return None if value is None else str(value)
