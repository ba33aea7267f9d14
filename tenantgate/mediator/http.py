"""Streamable HTTP, lean: stateless JSON-RPC over POST, JSON responses, checks before parsing.

The SDK's own Streamable HTTP stack answered 340-850 calls/s on this machine; this path does the
same protocol work for the methods the mediator serves (initialize, ping, tools/list, tools/call,
notifications) with orjson and no per-request task groups. Order of checks on every request:
path -> duplicate Host/Origin/routing headers (400) -> Host (421) -> Origin (403) -> Content-Type
(415) -> Accept (406) -> MCP-Protocol-Version (400) -> size (413) -> bearer token (401) ->
JSON-RPC (mediator/protocol.py). /healthz and /readyz answer before all of it; /metrics after the
Host and Origin checks.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from tenantgate.mediator import errors as E
from tenantgate.mediator import observe
from tenantgate.mediator import protocol as P
from tenantgate.mediator.discovery import METADATA_PREFIX, Challenges, resource_metadata
from tenantgate.mediator.service import (
    PROTOCOL_VERSIONS,
    SERVER_NAME,
    SERVER_VERSION,
    Mediator,
)
from tenantgate.mediator.settings import Settings

logger = logging.getLogger("tenantgate.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]")
LOOPBACK_ORIGINS = (
    "http://127.0.0.1:*",
    "http://localhost:*",
    "http://[::1]:*",
    "http://127.0.0.1",
    "http://localhost",
    "http://[::1]",
)
JSON = b"application/json"
PROBES = ("/healthz", "/readyz", "/metrics")


def _rpc_error(msg_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


async def _database_answers(mediator: Mediator) -> bool:
    try:
        async with mediator.pool.connection(timeout=2) as conn:
            await conn.execute("select 1")
    except Exception:
        return False
    return True


class HttpApp:
    """An ASGI app: the MCP endpoint, its RFC 9728 metadata, and nothing else."""

    def __init__(self, settings: Settings, mediator: Mediator | None = None) -> None:
        self.settings = settings
        self.mediator = mediator
        self._owns_mediator = mediator is None
        self.path = settings.http_path
        self.allowed_hosts = _patterns(tuple(settings.allowed_hosts) or LOOPBACK_HOSTS)
        self.allowed_origins = _patterns(tuple(settings.allowed_origins) or LOOPBACK_ORIGINS)
        self.max_bytes = settings.max_request_bytes
        self.metadata = resource_metadata(settings)
        self.challenges = Challenges(settings)
        self.required_scopes = frozenset(settings.required_scopes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.mediator is None:
                        self.mediator = await Mediator.start(self.settings)
                except Exception:
                    logger.exception("mediator failed to start")
                    await send({"type": "lifespan.startup.failed", "message": "startup failed"})
                    return
                observe.watch_pool(self.mediator.pool)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._owns_mediator and self.mediator is not None:
                    await self.mediator.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # a correlation id, not a secret: no system call for it (uuid4 asks the kernel)
        record = observe.RequestRecord(f"{random.getrandbits(128):032x}")

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                request_id = (b"x-request-id", record.request_id.encode())
                message["headers"] = [*message["headers"], request_id]
            await send(message)

        try:
            await self._serve(scope, receive, send_observed, record)
        finally:
            record.finish()

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, record: observe.RequestRecord
    ) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path in PROBES[:2] and method == "GET":  # no token, no Host check: probes
            return await self._probe(path, send)
        duplicated = P.duplicated_header(scope["headers"])
        if duplicated is not None:
            return await _refusal(send, duplicated)
        headers = dict(scope["headers"])  # names are lowercase bytes; duplicates refused above
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.allowed_hosts.match(host):
            return await _plain(send, 421, b"misdirected request")
        origin = headers.get(b"origin")
        if origin is not None and not self.allowed_origins.match(origin.decode("latin-1")):
            return await _plain(send, 403, b"origin not allowed")
        if path == "/metrics" and method == "GET":
            exposition, ctype = observe.exposition()
            return await _send(send, 200, exposition, content_type=ctype)
        if path.startswith(METADATA_PREFIX):
            if method != "GET":
                return await _plain(send, 405, b"method not allowed", [(b"allow", b"GET")])
            return await _send(send, 200, self.metadata)
        if path != self.path:
            return await _plain(send, 404, b"not found")
        if method != "POST":
            # no server-initiated stream and no sessions to delete: stateless JSON only
            return await _plain(send, 405, b"method not allowed", [(b"allow", b"POST")])
        version = P.check_post_headers(headers)
        if isinstance(version, P.Refusal):
            return await _refusal(send, version)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _plain(send, 413, b"request too large")
        claims = self._claims(headers)
        if claims is None:
            challenge = self.challenges.for_request(headers.get(b"authorization"))
            return await _plain(send, 401, b"unauthorized", [(b"www-authenticate", challenge)])
        record.org = claims.org_id
        if self.required_scopes and Challenges.lacks_scope(self.required_scopes, claims.scopes):
            insufficient = [(b"www-authenticate", self.challenges.insufficient)]
            return await _plain(send, 403, b"insufficient scope", insufficient)
        body = await _read_body(receive, self.max_bytes)
        if body is None:
            return await _plain(send, 413, b"request too large")
        incoming = P.decode_body(body, version)
        if isinstance(incoming, P.Refusal):
            return await _refusal(send, incoming)
        unsupported = P.version_refusal(version, incoming)
        if unsupported is not None:
            return await _refusal(send, unsupported)
        modern = version in P.MODERN_VERSIONS
        replies: list[dict[str, Any]] = []
        for raw in incoming.messages:
            reply = await self._one(claims, raw, headers, modern, incoming.batch, record)
            if reply is not None:
                replies.append(reply)
        if not replies:
            return await _plain(send, 202, b"")  # notifications and responses: nothing to answer
        if incoming.batch:
            return await _send(send, 200, orjson.dumps(replies))
        return await _send(send, P.status_of(replies[0], modern), orjson.dumps(replies[0]))

    async def _one(
        self,
        claims: Any,
        raw: Any,
        headers: dict[bytes, bytes],
        modern: bool,
        in_batch: bool,
        record: observe.RequestRecord,
    ) -> dict[str, Any] | None:
        """Answer one message of the body (None: nothing to answer)."""
        message = P.classify(raw)
        if isinstance(message, dict):
            return message
        record.method = message.method or record.method
        if message.kind == "response":
            return None
        if message.kind == "notification":
            return None
        if modern:
            refused = P.modern_check(raw, headers)
            if refused is not None:
                return refused
        if in_batch and message.method == "initialize":
            return P.rpc_error(message.msg_id, -32600, "initialize cannot be part of a batch")
        try:
            started = time.perf_counter()
            reply = await self._dispatch(claims, raw, modern)
            if message.method == "tools/call" and "result" in reply:
                params = message.params or {}
                record.call(params.get("name"), reply["result"], time.perf_counter() - started)
            return reply
        except Exception:
            logger.exception("request failed: method=%s", observe.tool_label(message.method))
            return _rpc_error(message.msg_id, -32603, "internal error")

    async def _probe(self, path: str, send: Send) -> None:
        """/healthz: the process answers. /readyz: the database answers and the catalog loaded."""
        if path == "/healthz":
            return await _send(send, 200, b'{"status":"ok"}')
        ready = self.mediator is not None and await _database_answers(self.mediator)
        if ready:
            return await _send(send, 200, b'{"status":"ready"}')
        return await _send(send, 503, b'{"status":"not ready"}')

    def _claims(self, headers: dict[bytes, bytes]) -> Any:
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() != b"bearer ":
            return None
        assert self.mediator is not None
        try:
            return self.mediator.authenticate(auth[7:].strip().decode("latin-1"))
        except E.TokenError:
            return None

    async def _dispatch(
        self, claims: Any, message: dict[str, Any], modern: bool = False
    ) -> dict[str, Any]:
        msg_id, method = message["id"], message["method"]
        params = message.get("params") or {}
        if not isinstance(params, dict):
            return _rpc_error(msg_id, -32602, "invalid params")
        assert self.mediator is not None
        if modern and method not in P.MODERN_METHODS:  # no initialize, no ping in 2026-07-28
            return P.method_not_found(msg_id)
        if method == "tools/call":
            result = await self.mediator.call_tool(
                claims, params.get("name"), params.get("arguments"), params.get("_meta")
            )
        elif method == "tools/list":
            result = {"tools": await self.mediator.list_tools(claims)}
            observe.learn_tools([t["name"] for t in result["tools"]])
        elif method == "initialize":
            asked = params.get("protocolVersion")
            result = {
                "protocolVersion": asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0],
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": SERVER_NAME, "version": SERVER_VERSION},
                "instructions": "Tools act for one customer, fixed by your session token.",
            }
        elif method == "ping":
            result = {}
        elif method == "server/discover" and modern:
            result = {
                "supportedVersions": list(P.SUPPORTED_VERSIONS),
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": SERVER_NAME, "version": SERVER_VERSION},
                "instructions": "Tools act for one customer, fixed by your session token.",
                "ttlMs": 0,
                "cacheScope": "private",
            }
        else:
            return P.method_not_found(msg_id)
        if modern:  # 2026-07-28 requests carry no handshake; results say they are complete
            result["resultType"] = "complete"
            result["_meta"] = {
                **(result.get("_meta") or {}),
                P.SERVER_INFO_META: {"name": SERVER_NAME, "version": SERVER_VERSION},
            }
            if method == "tools/list":
                result.update(ttlMs=0, cacheScope="private")
        return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def _patterns(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One anchored regex: exact names, where a trailing ':*' means any numeric port."""
    alternatives = []
    for p in patterns:
        if p.endswith(":*"):
            alternatives.append(re.escape(p[:-2]) + r":[0-9]{1,5}")
        else:
            alternatives.append(re.escape(p))
    return re.compile("(?:" + "|".join(alternatives) + r")\Z", re.IGNORECASE)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = JSON,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refusal(send: Send, refusal: P.Refusal) -> None:
    if refusal.json:
        return await _send(send, refusal.status, refusal.body)
    return await _plain(send, refusal.status, refusal.body)


async def _plain(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send(send, status, body, extra, b"text/plain; charset=utf-8")


def create_app(settings: Settings | None = None) -> HttpApp:
    """ASGI factory (uvicorn --factory): one mediator per worker process."""
    from tenantgate.mediator.hardening import harden
    from tenantgate.mediator.logs import configure

    harden()  # a spawned worker starts dumpable again: harden it too
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    return HttpApp(settings)


def serve_http(settings: Settings) -> None:
    """Run the HTTP transport with uvicorn (uvloop + httptools, mediator/http_wire.py)."""
    import uvicorn

    from tenantgate.mediator.http_wire import HTTP_PROTOCOL

    if settings.http_host not in ("127.0.0.1", "localhost", "::1") and not settings.allowed_hosts:
        raise SystemExit(
            "binding beyond loopback needs TENANTGATE_ALLOWED_HOSTS and TENANTGATE_ALLOWED_ORIGINS"
        )
    common: dict[str, Any] = dict(
        loop="uvloop",
        http=HTTP_PROTOCOL,  # httptools, one write per response
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    if settings.workers > 1:  # one socket per worker: connections spread over all of them
        from tenantgate.mediator.metrics_mp import shared_dir
        from tenantgate.mediator.workers import serve_workers

        with shared_dir():  # /metrics sums every worker's files (mediator/metrics_mp.py)
            serve_workers(settings.http_host, settings.http_port, settings.workers, common)
    else:
        uvicorn.run(
            create_app(settings), host=settings.http_host, port=settings.http_port, **common
        )
