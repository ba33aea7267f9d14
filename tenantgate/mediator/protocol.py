"""MCP over HTTP: the header and envelope checks the spec asks for, before anything is dispatched.

Supported revisions (docs/mediator.md has the table): 2025-03-26 (with JSON-RPC batches),
2025-06-18 and 2025-11-25 (initialize handshake), 2026-07-28 (stateless per-request envelope,
`Mcp-Method` / `Mcp-Name` routing headers, `server/discover`). The 2026-07-28 envelope ladder is the
SDK's own (`mcp.shared.inbound.classify_inbound_request`), so the client and the server agree on it
by construction. Everything here is pure: headers and bytes in, a verdict out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    unsupported_protocol_version_rejection,
)
from mcp_types.jsonrpc import (
    HEADER_MISMATCH,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
)

MODERN_VERSIONS = ("2026-07-28",)
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
SUPPORTED_VERSIONS = (*MODERN_VERSIONS, *HANDSHAKE_VERSIONS)
# The spec: a request without MCP-Protocol-Version is taken as 2025-03-26 (the revision before
# the header existed). That is also the only revision whose messages may come in a batch.
HEADERLESS_VERSION = "2025-03-26"
BATCH_VERSIONS = ("2025-03-26",)
MAX_BATCH = 32
# Methods that name their target in params, mirrored by the Mcp-Name header under 2026-07-28.
SINGLE_HEADERS = (
    b"host",
    b"origin",
    b"content-type",
    b"mcp-protocol-version",
    b"mcp-method",
    b"mcp-name",
    b"authorization",
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer given before dispatch: an HTTP status and its body."""

    status: int
    body: bytes
    json: bool = True


def rpc_error(msg_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": error}


def _refuse(status: int, msg_id: Any, code: int, message: str, data: Any = None) -> Refusal:
    return Refusal(status, orjson.dumps(rpc_error(msg_id, code, message, data)))


def duplicated_header(raw: list[tuple[bytes, bytes]]) -> Refusal | None:
    """Headers a proxy and this server could read differently when sent twice: refused (400)."""
    seen: set[bytes] = set()
    for name, _ in raw:
        key = name.lower()
        if key in SINGLE_HEADERS:
            if key in seen:
                return Refusal(400, b"duplicate " + key + b" header", json=False)
            seen.add(key)
    return None


def _media_types(value: bytes) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in value.decode("latin-1").split(",")]


def check_post_headers(headers: dict[bytes, bytes]) -> Refusal | str:
    """Content-Type (415), Accept (406); else the request's MCP-Protocol-Version (unchecked)."""
    ctype = _media_types(headers.get(b"content-type", b""))
    if ctype[:1] != ["application/json"]:
        return Refusal(415, b"Content-Type must be application/json", json=False)
    accepted = _media_types(headers.get(b"accept", b""))
    if not any(t in ("application/json", "application/*", "*/*") for t in accepted):
        return Refusal(406, b"Accept must include application/json", json=False)
    raw = headers.get(b"mcp-protocol-version")
    if raw is None:
        return HEADERLESS_VERSION
    return raw.decode("latin-1").strip()[:64]  # checked by version_refusal, with the body's id


def version_refusal(version: str, incoming: Incoming) -> Refusal | None:
    """400 with -32022 naming the served versions (the same list as server/discover), carrying
    the request's id when it has a usable one."""
    if version in SUPPORTED_VERSIONS:
        return None
    first = incoming.messages[0] if not incoming.batch else None
    msg_id = first.get("id") if isinstance(first, dict) and valid_id(first.get("id")) else None
    return _refuse(
        400,
        msg_id,
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        {"supported": list(SUPPORTED_VERSIONS), "requested": version},
    )


@dataclass(frozen=True, slots=True)
class Incoming:
    """A decoded POST body: its messages, whether they came as a batch, early replies by index."""

    messages: list[Any]
    batch: bool


def decode_body(body: bytes, version: str) -> Incoming | Refusal:
    """Parse the body; a batch only where the revision allows one."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _refuse(400, None, PARSE_ERROR, "parse error")
    if isinstance(decoded, list):
        if version not in BATCH_VERSIONS:
            return _refuse(400, None, INVALID_REQUEST, f"batches are not part of {version}")
        if not decoded or len(decoded) > MAX_BATCH:
            return _refuse(400, None, INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH} messages")
        return Incoming(decoded, batch=True)
    return Incoming([decoded], batch=False)


def valid_id(value: Any) -> bool:
    """JSON-RPC ids as MCP allows them: a string or an integer (never null, a bool or a float)."""
    return type(value) is str or type(value) is int


@dataclass(frozen=True, slots=True)
class Message:
    """One message, classified: a request to dispatch, or nothing to answer."""

    kind: str  # "request" | "notification" | "response"
    msg_id: Any = None
    method: str = ""
    params: Any = None


def classify(message: Any) -> Message | dict[str, Any]:
    """A JSON-RPC 2.0 message, or the error reply it earns (id null when its id is unusable)."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return rpc_error(None, INVALID_REQUEST, "invalid request")
    has_id = "id" in message
    msg_id = message.get("id")
    if has_id and not valid_id(msg_id):
        return rpc_error(None, INVALID_REQUEST, "invalid request: id must be a string or integer")
    method = message.get("method")
    if method is None and has_id and ("result" in message or "error" in message):
        return Message("response", msg_id)  # a client's answer: nothing waits for it here
    if not isinstance(method, str):
        return rpc_error(msg_id if has_id else None, INVALID_REQUEST, "invalid request")
    params = message.get("params")
    if params is not None and not isinstance(params, dict):
        return rpc_error(msg_id if has_id else None, -32602, "invalid params")
    if not has_id:
        return Message("notification", None, method, params)
    return Message("request", msg_id, method, params or {})


def modern_check(message: dict[str, Any], headers: dict[bytes, bytes]) -> dict[str, Any] | None:
    """2026-07-28: the per-request envelope and the routing headers agree with the body.

    `Mcp-Method` must equal the body's method and `Mcp-Name` the tool name of a tools/call: a
    gateway that applies policy by header then sees what the server runs.
    """
    # RFC 9110 5.5: a field value excludes leading and trailing whitespace (httptools keeps it)
    text_headers = {
        k.decode("latin-1"): v.decode("latin-1").strip(" \t") for k, v in headers.items()
    }
    verdict = classify_inbound_request(message, headers=text_headers)
    if isinstance(verdict, InboundLadderRejection):
        return rpc_error(message.get("id"), verdict.code, verdict.message, verdict.data)
    return None


def notification_version_check(version: str) -> Refusal | None:
    """A 2026-07-28 notification only needs a version this server serves."""
    rejection = unsupported_protocol_version_rejection(version, MODERN_VERSIONS)
    if rejection is None:
        return None
    return _refuse(400, None, rejection.code, rejection.message, rejection.data)


# 2026-07-28 has no handshake and no ping: what a modern request may call here.
MODERN_METHODS = frozenset({"server/discover", "tools/list", "tools/call"})
SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"


def method_not_found(msg_id: Any) -> dict[str, Any]:
    return rpc_error(msg_id, METHOD_NOT_FOUND, "method not found")


def status_of(reply: dict[str, Any], modern: bool) -> int:
    """HTTP status of a single reply: 2026-07-28 maps error codes (404, 400); older revisions
    answer 200 except for messages that were not valid requests at all."""
    error = reply.get("error")
    if error is None:
        return 200
    code = error.get("code")
    if modern:
        return ERROR_CODE_HTTP_STATUS.get(code, 200)
    return 400 if code in (PARSE_ERROR, INVALID_REQUEST, HEADER_MISMATCH) else 200
