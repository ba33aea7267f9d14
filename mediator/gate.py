"""The per-turn gate: trust check, catalog, scope, validation, limits, credits, query, audit."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ValidationError

from mediator import errors as E
from mediator.db import sql_context
from mediator.settings import Settings
from mediator.shaping import DataPolicy, shape_rows
from mediator.tokens import Claims
from mediator.tools import Registry, Tool

logger = logging.getLogger("tenantgate.gate")

# answer(approval_id, tool, arguments) -> True approved, False denied, None cannot ask
Approver = Callable[[str, str, dict[str, Any]], Awaitable[bool | None]]

TRUST_CHECK = (
    "select * from tenantgate.trust_check("
    "%(org)s::uuid, %(conn)s::uuid, %(cust)s::uuid, %(secret)s)"
)
AUDIT = "select * from tenantgate.append_audit(%s, %s, %s, %s::jsonb)"
AUDIT_DENIAL = "select tenantgate.audit_denial(%s::uuid, %s, %s, %s, %s::jsonb)"
RATE = "select tenantgate.rate_take(%s, %s, %s)"
APPROVAL = "select * from tenantgate.approval_take(%s, %s, %s::jsonb)"
APPROVAL_USE = "select tenantgate.approval_use(%s::uuid)"
ANSWER = "select tenantgate.approval_answer(%s::uuid, %s)"
TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
REQUEST_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,100}\Z")
ADMIT = (
    "select * from tenantgate.gate_admit(%s::uuid, %s::uuid, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One catalog row: a tool this session's connector enables."""

    name: str
    required_scope: str
    side_effect: bool
    credit_cost: int
    description: str


@dataclass(frozen=True, slots=True)
class Verified:
    """What the trust check proved for this turn."""

    session_id: str
    operator_id: str
    scopes: frozenset[str]
    catalog: dict[str, Entry]


def _verified(rows: list[dict[str, Any]], claims: Claims) -> Verified | None:
    if not rows:
        return None
    first = rows[0]
    if (
        str(first["session_id"]) != claims.session_id
        or str(first["operator_id"]) != claims.operator_id
    ):
        return None  # the token names another session than its secret opens
    scopes = frozenset(first["scopes"]) & claims.scopes
    catalog = {
        r["tool_name"]: Entry(
            r["tool_name"],
            r["required_scope"],
            r["side_effect"],
            r["credit_cost"],
            r["description"],
        )
        for r in rows
    }
    return Verified(str(first["session_id"]), str(first["operator_id"]), scopes, catalog)


def args_hash(model: BaseModel) -> bytes:
    return hashlib.sha256(
        orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    ).digest()


class Gate:
    """Runs every tool call and tools/list through the database, in as few round trips as it can."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        registry: Registry,
        policy: DataPolicy,
        settings: Settings,
    ) -> None:
        self.pool, self.registry, self.policy, self.settings = pool, registry, policy, settings
        # test hook: awaited with the connection after the read is sent, before its commit
        self.fault_before_commit: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]] | None
        self.fault_before_commit = None

    # -- tools/list -------------------------------------------------------------------------
    async def list_tools(self, claims: Claims) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(TRUST_CHECK, _tc_params(claims))
            v = _verified(await cur.fetchall(), claims)
        if v is None:
            return []
        out = []
        for entry in v.catalog.values():
            tool = self.registry.get(entry.name)
            if tool is None or entry.required_scope not in v.scopes:
                continue
            out.append(
                {
                    "name": tool.name,
                    "description": entry.description or tool.description,
                    "inputSchema": tool.input_schema(),
                    "annotations": tool.annotations(),
                }
            )
        return out

    # -- tools/call -------------------------------------------------------------------------
    async def call(
        self,
        claims: Claims,
        name: str,
        arguments: dict[str, Any] | None,
        request_key: str | None = None,
        approver: Approver | None = None,
    ) -> Any:
        """Run one tool call; return its shaped result or raise a MediatorError."""
        if not (request_key and REQUEST_KEY.match(request_key)):
            request_key = uuid.uuid4().hex  # an unusable key is ignored: no idempotency, no error
        key = request_key
        request_id = f"{claims.session_id}:{key}"[:200]
        try:
            result = await self._call(claims, name, arguments or {}, request_id)
        except E.ApprovalRequired as pending:
            if approver is None:
                raise
            answer = await approver(pending.approval_id, name, arguments or {})
            if answer is None:
                raise
            await self._answer(claims, pending.approval_id, answer)
            if not answer:
                raise E.ApprovalDenied() from None
            result = await self._call(claims, name, arguments or {}, request_id + ":approved")
        return result

    async def _call(
        self, claims: Claims, name: str, arguments: dict[str, Any], request_id: str
    ) -> Any:
        try:
            async with self.pool.connection() as conn:
                return await self._run(conn, claims, name, arguments, request_id)
        except E.MediatorError:
            raise
        except psycopg.Error as exc:
            mapped = E.from_psycopg(exc)
            logger.warning("tool call failed: tool=%s sqlstate=%s", name, exc.sqlstate)
            raise mapped from None

    async def _run(
        self,
        conn: psycopg.AsyncConnection[Any],
        claims: Claims,
        name: str,
        arguments: dict[str, Any],
        request_id: str,
    ) -> Any:
        if not TOOL_NAME.match(name):
            name = "<invalid>"  # cannot be in any catalog; keeps the audit row storable
        # Round trip 1: trust check + catalog (autocommit, read only).
        cur = await conn.cursor(row_factory=dict_row).execute(TRUST_CHECK, _tc_params(claims))
        v = _verified(await cur.fetchall(), claims)
        tool = self.registry.get(name)
        entry = v.catalog.get(name) if v else None
        if v is None:
            await conn.execute(
                AUDIT_DENIAL, (claims.org_id, request_id, name[:64], "trust_check_failed", "{}")
            )
            raise E.NotFound()
        if tool is None or entry is None or entry.required_scope not in v.scopes:
            await self._audit(
                conn, claims, request_id, name, "denied", {"reason": "not_in_catalog"}
            )
            raise E.NotFound()
        try:
            args = tool.input_model.model_validate(arguments)
        except ValidationError as exc:
            errs = [{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]
            reason = {"reason": "invalid_arguments"}
            await self._audit(conn, claims, request_id, name, "denied", reason)
            raise E.InvalidArguments(errs) from None
        digest = args_hash(args)
        detail: dict[str, Any] = {"args_sha256": digest.hex()}
        s = self.settings
        take_rate = True
        if entry.side_effect:
            # Round trip 1b (side effects only): rate limit, then a human's approval.
            # A pipeline without BEGIN runs as one implicit transaction, committed at its Sync.
            try:
                async with conn.pipeline():
                    await conn.execute(sql_context(), _ctx_params(claims))
                    await conn.execute(RATE, (name, s.rate_burst, s.rate_per_second))
                    acur = await conn.execute(APPROVAL, (name, digest, args.model_dump_json()))
            except psycopg.Error as exc:
                await self._refuse(conn, claims, request_id, name, exc, detail)
            status, approval_id = await acur.fetchone() or ("pending", None)
            detail["approval_id"] = str(approval_id)
            if status != "approved":
                decision = "approval_required" if status == "pending" else "denied"
                await self._audit(conn, claims, request_id, name, decision, detail)
                if status == "pending":
                    raise E.ApprovalRequired(str(approval_id))
                raise E.ApprovalDenied()
            take_rate = False
        params = args.model_dump()
        params.update(org_id=claims.org_id, customer_id=claims.customer_id, max_rows=s.max_rows + 1)
        admit_args = (
            claims.org_id,
            claims.customer_id,
            claims.session_secret,
            request_id,
            name,
            entry.credit_cost,
            s.rate_burst,
            s.rate_per_second,
            take_rate,
            orjson.dumps(detail).decode(),
        )
        if entry.side_effect:
            return await self._side_effect(conn, claims, v, tool, params, admit_args, detail)
        # Round trip 2, one implicit transaction: admit (context, rate limit, credits, the audit
        # row), then the template; committed at the pipeline's Sync, or rolled back whole.
        try:
            async with conn.pipeline():
                await conn.execute(ADMIT, admit_args)  # sets the context first
                data = await conn.cursor(row_factory=dict_row).execute(tool.sql, params)
                if self.fault_before_commit is not None:
                    await self.fault_before_commit(conn)
        except psycopg.Error as exc:
            await self._refuse(conn, claims, request_id, name, exc, detail)
        rows = await data.fetchall()
        if tool.runner is not None:
            rows = await self._run_upstream(conn, claims, request_id, tool, rows, args)
        return self._shape(tool, v, rows)

    async def _run_upstream(
        self,
        conn: psycopg.AsyncConnection[Any],
        claims: Claims,
        request_id: str,
        tool: Tool,
        rows: list[dict[str, Any]],
        args: BaseModel,
    ) -> list[dict[str, Any]]:
        """The HTTP half of a tool, after its audit row committed (no connection work inside)."""
        assert tool.runner is not None
        try:
            return await tool.runner(rows, args)
        except Exception as exc:
            logger.warning("upstream call failed: tool=%s error=%s", tool.name, type(exc).__name__)
        await self._audit(conn, claims, request_id, tool.name, "error", {"reason": "upstream"})
        raise E.UpstreamFailed()

    async def _side_effect(
        self,
        conn: psycopg.AsyncConnection[Any],
        claims: Claims,
        v: Verified,
        tool: Tool,
        params: dict[str, Any],
        admit_args: tuple[Any, ...],
        detail: dict[str, Any],
    ) -> Any:
        """Approval use, credits, audit and the change in one explicit transaction, committed
        only when the change touched a row: otherwise nothing is charged or used up."""
        request_id, name = admit_args[3], admit_args[4]
        try:
            async with conn.pipeline():
                await conn.execute("begin")
                await conn.execute(sql_context(), _ctx_params(claims))
                await conn.execute(APPROVAL_USE, (detail["approval_id"],))
                await conn.execute(ADMIT, admit_args)
                data = await conn.cursor(row_factory=dict_row).execute(tool.sql, params)
            rows = await data.fetchall()
            if rows:
                await conn.execute("commit")
                return self._shape(tool, v, rows)
        except psycopg.Error as exc:
            await self._refuse(conn, claims, request_id, name, exc, detail)
        await conn.rollback()
        await self._audit(conn, claims, request_id, name, "denied", {**detail, "reason": "no_row"})
        raise E.NotFound()

    def _shape(self, tool: Tool, v: Verified, rows: list[dict[str, Any]]) -> Any:
        s = self.settings
        shaped = shape_rows(
            rows,
            column_of=tool.column_of,
            policy=self.policy,
            ceiling=self.policy.ceiling(v.scopes),
            max_rows=s.max_rows,
            max_bytes=s.max_bytes,
        )
        if not tool.many:
            if not shaped.rows:
                raise E.NotFound()
            out: dict[str, Any] = dict(shaped.rows[0])
        else:
            out = {"items": shaped.rows, "truncated": shaped.truncated}
        if shaped.masked:
            out["_masked"] = list(shaped.masked)
        return out

    # -- endings that are not a successful read ---------------------------------------------
    async def _audit(
        self,
        conn: psycopg.AsyncConnection[Any],
        claims: Claims,
        request_id: str,
        name: str,
        decision: str,
        detail: dict[str, Any],
    ) -> None:
        """Audit a refusal for the verified session (one round trip, its own transaction)."""
        async with conn.pipeline():
            await conn.execute(sql_context(), _ctx_params(claims))
            await conn.execute(AUDIT, (request_id, name, decision, orjson.dumps(detail).decode()))

    async def _refuse(
        self,
        conn: psycopg.AsyncConnection[Any],
        claims: Claims,
        request_id: str,
        name: str,
        exc: psycopg.Error,
        detail: dict[str, Any],
    ) -> NoReturn:
        """A statement failed mid-call: roll back, audit why in a fresh transaction, re-raise."""
        mapped = E.from_psycopg(exc)
        decision = {E.RateLimited: "rate_limited", E.NoCredit: "no_credit"}.get(
            type(mapped), "error"
        )
        if decision == "error":
            logger.warning("tool call failed: tool=%s sqlstate=%s", name, exc.sqlstate)
            detail = {**detail, "sqlstate": exc.sqlstate}
        if conn.closed or conn.broken:
            raise E.Unavailable() from None
        await conn.rollback()  # an explicit transaction may be open (side effects)
        if mapped.message == "not found":  # the session stopped being live since round trip 1
            await conn.execute(
                AUDIT_DENIAL, (claims.org_id, request_id, name[:64], "trust_check_failed", "{}")
            )
        else:
            await self._audit(conn, claims, request_id, name, decision, detail)
        raise mapped from None

    async def _answer(self, claims: Claims, approval_id: str, approve: bool) -> None:
        async with self.pool.connection() as conn, conn.pipeline():
            await conn.execute(sql_context(), _ctx_params(claims))
            await conn.execute(ANSWER, (approval_id, approve))


def _ctx_params(c: Claims) -> dict[str, str]:
    return {"org": c.org_id, "cust": c.customer_id, "secret": c.session_secret}


def _tc_params(c: Claims) -> dict[str, str]:
    return {
        "org": c.org_id,
        "conn": c.connector_id,
        "cust": c.customer_id,
        "secret": c.session_secret,
    }
