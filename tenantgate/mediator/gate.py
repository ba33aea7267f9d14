"""The per-turn gate: one statement of tenantgate.call_tool per tools/call, of list_tools per list.

Everything that decides (session, catalog, scope, arguments, rate limit, request key, approval,
credits, the tool itself, shaping, audit) happens in that statement, in the database. This module
carries the verified token's tenant and secret to it and turns its answer into a result or a
MediatorError.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, LiteralString

import psycopg
from psycopg.types.json import Jsonb

from tenantgate.mediator import errors as E
from tenantgate.mediator.db import MediatorPool
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import Claims

logger = logging.getLogger("tenantgate.gate")

# answer(approval_id, tool, arguments) -> True approved, False denied, None cannot ask
Approver = Callable[[str, str, dict[str, Any]], Awaitable[bool | None]]

CALL: LiteralString = "select tenantgate.call_tool(%s::uuid, %s::uuid, %s, %s, %s, %s::jsonb)"
LIST: LiteralString = "select tenantgate.list_tools(%s::uuid, %s::uuid, %s)"
OUTCOME: LiteralString = (
    "select tenantgate.upstream_outcome(%s::uuid, %s::uuid, %s, %s, %s, %s, %s, %s)"
)
HTTP_SPEC: LiteralString = (
    "select http from tenantgate.tool_definitions where tool_name = %s and version = %s"
)
ANSWER: LiteralString = "select tenantgate.approval_answer(%s::uuid, %s::uuid, %s, %s::uuid, %s)"
TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
REQUEST_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,100}\Z")


def _unstorable(value: Any, loc: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """Where a value JSON in the database cannot hold (NUL, a lone surrogate, a non-finite
    number) hides in the arguments."""
    if isinstance(value, float) and not math.isfinite(value):
        return loc
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
            return loc
    elif isinstance(value, dict):
        for key, item in value.items():
            # `is None`, not `or`: a bad top-level key is found at loc (), which is falsy
            found = _unstorable(key, loc)
            if found is None:
                found = _unstorable(item, (*loc, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _unstorable(item, (*loc, i))
            if found is not None:
                return found
    return None


def _raise_for(answer: dict[str, Any]) -> None:
    """Turn a refusal answered by the gate into the error the host sees."""
    status = answer.get("status")
    if status == "ok":
        return
    if status == "not_found":
        raise E.NotFound()
    if status == "invalid_arguments":
        raise E.InvalidArguments(list(answer.get("errors") or []))
    if status == "rate_limited":
        raise E.RateLimited()
    if status == "no_credit":
        raise E.NoCredit()
    if status == "approval_required":
        raise E.ApprovalRequired(str(answer.get("approval_id")), str(answer.get("approver")))
    if status == "denied":
        raise E.ApprovalDenied()
    if status == "conflict":
        raise E.RequestKeyReused()
    if status == "unconfigured":
        raise E.UpstreamNotConfigured()
    logger.warning("tool call failed in the database: sqlstate=%s", answer.get("sqlstate"))
    raise E.MediatorError("internal error")


class Gate:
    """Runs every tool call and tools/list through the database: one statement, one round trip."""

    def __init__(self, pool: MediatorPool, settings: Settings) -> None:
        self.pool, self.settings = pool, settings
        self._upstream: HttpHalf | None = None  # built on the first HTTP-backed call
        self._cursors: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    @property
    def upstream(self) -> HttpHalf:
        if self._upstream is None:
            self._upstream = HttpHalf(self)
        return self._upstream

    async def close(self) -> None:
        if self._upstream is not None:
            await self._upstream.close()

    async def _one(self, query: LiteralString, params: tuple[Any, ...]) -> Any:
        try:
            async with self.pool.connection() as conn:  # in turn: db.MediatorPool
                cur = self._cursors.get(conn)
                if cur is None:  # one cursor per pooled connection, made once
                    cur = self._cursors[conn] = conn.cursor()
                await cur.execute(query, params)
                row = await cur.fetchone()
        except psycopg.Error as exc:
            logger.warning("gate statement failed: sqlstate=%s", exc.sqlstate)
            raise E.from_psycopg(exc) from None
        return row[0] if row else None

    async def list_tools(self, claims: Claims) -> list[dict[str, Any]]:
        """The session's catalog as MCP tool objects; [] for a session that is not live."""
        tools = await self._one(LIST, (claims.org_id, claims.customer_id, claims.session_secret))
        return list(tools or [])

    async def call(
        self,
        claims: Claims,
        name: str,
        arguments: dict[str, Any] | None,
        request_key: str | None = None,
        approver: Approver | None = None,
    ) -> Any:
        """Run one tool call; return its shaped result or raise a MediatorError."""
        if not TOOL_NAME.match(name):
            name = "<invalid>"  # cannot be in any catalog; still recorded as a refusal
        if request_key is not None and not REQUEST_KEY.match(request_key):
            request_key = None  # an unusable key is ignored: no idempotency, no error
        bad = _unstorable(arguments or {})
        if bad is not None:
            msg = "text must not contain NUL characters or lone surrogates"
            raise E.InvalidArguments([{"loc": list(bad), "msg": msg}])
        try:
            return await self._call(claims, name, arguments or {}, request_key)
        except E.ApprovalRequired as pending:
            if approver is None or pending.approver != "host":
                raise
            answer = await approver(pending.approval_id, name, arguments or {})
            if answer is None:
                raise
            decided = await self._one(
                ANSWER,
                (
                    claims.org_id,
                    claims.customer_id,
                    claims.session_secret,
                    pending.approval_id,
                    answer,
                ),
            )
            if decided == "not_found":
                raise E.NotFound() from None
            if not answer:
                raise E.ApprovalDenied() from None
            return await self._call(claims, name, arguments or {}, request_key)

    async def _call(
        self, claims: Claims, name: str, arguments: dict[str, Any], request_key: str | None
    ) -> Any:
        answer = await self._one(
            CALL,
            (
                claims.org_id,
                claims.customer_id,
                claims.session_secret,
                request_key,
                name,
                Jsonb(arguments),
            ),
        )
        if not isinstance(answer, dict):
            raise E.MediatorError("internal error")
        if answer.get("status") == "upstream":
            return await self.upstream.call(claims, name, answer, request_key)
        _raise_for(answer)
        return answer.get("result")


class HttpHalf:
    """The HTTP half of an admitted, charged, audited HTTP-backed call (mediator/http_call.py).

    The database handed over this session's customer's sealed key only; it is decrypted in memory,
    only after the egress checks pass, and the outcome goes back as one 'upstream' audit row.
    The charge stands whatever upstream answers (docs/http-tools.md).
    """

    def __init__(self, gate: Gate) -> None:
        from tenantgate.mediator.egress import EgressPolicy
        from tenantgate.mediator.keys import FileKeyProvider
        from tenantgate.mediator.upstream import UpstreamClient

        self.gate = gate
        self.client = UpstreamClient(EgressPolicy.from_env())
        self._provider: FileKeyProvider | None = None
        self._specs: dict[tuple[str, int], Any] = {}

    async def close(self) -> None:
        await self.client.aclose()

    def _key_provider(self, reload: bool = False) -> Any:
        from tenantgate.mediator.keys import FileKeyProvider

        if self._provider is None or reload:
            self._provider = FileKeyProvider.from_env()
        return self._provider

    def _unseal(self, ciphertext: bytes, key_id: str) -> Any:
        """Decrypt in memory; a key id this process has not loaded yet (a rotation under way)
        reloads the key file once, so live sessions keep working through `secrets rotate`."""
        from tenantgate.mediator.keys import UnknownKeyError
        from tenantgate.mediator.secrets import unseal

        try:
            return unseal(ciphertext, key_id, self._key_provider())
        except UnknownKeyError:
            return unseal(ciphertext, key_id, self._key_provider(reload=True))

    async def _spec(self, name: str, version: int) -> Any:
        from tenantgate.mediator.http_tools import HttpToolSpec

        spec = self._specs.get((name, version))
        if spec is None:
            stored = await self.gate._one(HTTP_SPEC, (name, version))
            if not isinstance(stored, dict):
                raise E.MediatorError("internal error")
            spec = HttpToolSpec.from_mapping(name, stored)
            self._specs = {k: v for k, v in self._specs.items() if k[0] != name}
            self._specs[(name, version)] = spec
        return spec

    async def call(
        self, claims: Claims, name: str, answer: dict[str, Any], request_key: str | None
    ) -> Any:
        from tenantgate.mediator.http_call import call_http_tool
        from tenantgate.mediator.shaping import CLASSES, DataPolicy

        # The session's ceiling is the database's, computed in the same statement from the
        # session's scopes and scope_classes: no copy of scope_classes that could be stale.
        ceiling = DataPolicy(columns={}, scopes={"session": CLASSES[int(answer["ceiling"])]})
        up = answer["upstream"]
        ciphertext = base64.b64decode(up["ciphertext"])
        status, size, latency, error = 0, 0, 0.0, ""
        try:
            spec = await self._spec(name, int(answer["version"]))
            outcome = await call_http_tool(
                spec,
                answer.get("args") or {},
                base_url=up["base_url"],
                auth_header=up["auth_header"],
                key=lambda: self._unseal(ciphertext, up["key_id"]),
                client=self.client,
                policy=ceiling,
                scopes=["session"],
                idempotency_key=request_key,
            )
        except E.MediatorError as exc:
            status = int(getattr(exc, "status", 0) or 0)
            latency = float(getattr(exc, "latency_ms", 0.0) or 0.0)
            error = type(exc).__name__
            await self._report(claims, answer, status, size, latency, error)
            raise
        except Exception:
            logger.warning("upstream call failed unexpectedly: tool=%s", name)
            await self._report(claims, answer, 0, 0, 0.0, "internal")
            raise E.UpstreamFailed() from None
        await self._report(claims, answer, outcome.status, outcome.bytes, outcome.latency_ms, "")
        return outcome.result

    async def _report(
        self,
        claims: Claims,
        answer: dict[str, Any],
        status: int,
        size: int,
        latency_ms: float,
        error: str,
    ) -> None:
        try:
            await self.gate._one(
                OUTCOME,
                (
                    claims.org_id,
                    claims.customer_id,
                    claims.session_secret,
                    int(answer["admission"]),
                    status,
                    size,
                    int(latency_ms),
                    error,
                ),
            )
        except E.MediatorError:
            logger.warning(
                "could not record an upstream outcome: admission=%s", answer.get("admission")
            )
