"""The transport-independent mediator: verify the token, run the gate, answer MCP results."""

from __future__ import annotations

import logging
import time
from typing import Any

from psycopg_pool import AsyncConnectionPool

from tenantgate.mediator import errors as E
from tenantgate.mediator import tracing
from tenantgate.mediator.db import make_pool
from tenantgate.mediator.gate import TOOL_NAME, Approver, Gate
from tenantgate.mediator.results import ok_result
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import Claims, TokenVerifier

logger = logging.getLogger("tenantgate.mediator")

SERVER_NAME = "tenantgate"
SERVER_VERSION = "0.1.0"
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
REQUEST_KEY_META = "dev.tenantgate/request-id"


def _loggable(name: str) -> str:
    """A tool name fit for a log line: a caller's arbitrary text (NUL, lone surrogates, newlines)
    never reaches a log handler."""
    return name if TOOL_NAME.match(name) else "<invalid>"


class ToolResult(dict[str, Any]):
    """A CallToolResult (a plain dict on the wire) that also carries the decision it reports,
    for the metrics and the request log; the decision is never serialised."""

    decision: str = "allowed"


def error_result(message: str, decision: str = "error") -> dict[str, Any]:
    result = ToolResult(content=[{"type": "text", "text": message}], isError=True)
    result.decision = decision
    return result


class Mediator:
    """One per process: the verifier, the pool and the gate every transport shares."""

    def __init__(
        self,
        settings: Settings,
        verifier: TokenVerifier,
        gate: Gate,
        pool: AsyncConnectionPool[Any],
    ) -> None:
        self.settings, self.verifier, self.gate, self.pool = settings, verifier, gate, pool
        self._verified: dict[str, Claims] = {}

    @classmethod
    async def start(cls, settings: Settings) -> Mediator:
        verifier = TokenVerifier(settings)
        tracing.configure(settings)  # before the pool connects: psycopg spans need it first
        pool = make_pool(settings)
        await pool.open(wait=True)
        gate = Gate(pool, settings)
        logger.info(
            "mediator ready: pool %d..%d, prepare_threshold=%s",
            settings.pool_min_size,
            settings.pool_max_size,
            settings.prepare_threshold,
        )
        return cls(settings, verifier, gate, pool)

    async def close(self) -> None:
        await self.gate.close()
        await self.pool.close()

    def authenticate(self, token: str) -> Claims:
        """Verify a bearer token (signature checked once per token, time claims every call)."""
        claims = self._verified.get(token)
        if claims is not None:
            if claims.expires_at + self.settings.leeway_seconds > time.time():
                return claims
            self._verified.pop(token, None)
            raise E.TokenError()
        claims = self.verifier.verify(token)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    async def list_tools(self, claims: Claims) -> list[dict[str, Any]]:
        """The session's catalog; an invalid session lists nothing. Database errors propagate."""
        with tracing.list_span(claims.org_id):
            return await self.gate.list_tools(claims)

    async def call_tool(
        self,
        claims: Claims,
        name: Any,
        arguments: Any,
        meta: dict[str, Any] | None = None,
        approver: Approver | None = None,
    ) -> dict[str, Any]:
        """A CallToolResult as a dict; every failure is a tool error, never a protocol crash."""
        if tracing.active():  # one span around the call; off, this check is all it costs
            return await tracing.traced_call(
                lambda: self._call_tool(claims, name, arguments, meta, approver),
                name,
                claims.org_id,
                meta,
            )
        return await self._call_tool(claims, name, arguments, meta, approver)

    async def _call_tool(
        self,
        claims: Claims,
        name: Any,
        arguments: Any,
        meta: dict[str, Any] | None,
        approver: Approver | None,
    ) -> dict[str, Any]:
        key = (meta or {}).get(REQUEST_KEY_META)
        if not isinstance(key, str):
            key = None
        if (
            not isinstance(name, str)
            or len(name) > 64
            or not (arguments is None or isinstance(arguments, dict))
        ):
            return error_result(E.NotFound().message, E.NotFound.decision)
        try:
            value = await self.gate.call(claims, name, arguments, key, approver)
        except E.MediatorError as exc:
            logger.info("tool call refused: tool=%s reason=%s", _loggable(name), type(exc).__name__)
            return error_result(exc.message, exc.decision)
        except Exception:
            logger.exception("tool call failed: tool=%s", _loggable(name))
            return error_result("internal error")
        return ok_result(value, self.settings.max_result_bytes)
