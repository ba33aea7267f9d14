"""A lean MCP client over Streamable HTTP: raw HTTP/1.1 keep-alive on asyncio streams.

The same client drives every server, so the numbers compare servers, not clients. It speaks just
enough HTTP/1.1 (Content-Length and chunked bodies) and MCP (initialize, then tools/call with the
server's ``mcp-session-id`` if it hands one out; JSON or SSE answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

PROTOCOL = "2025-06-18"


class HttpError(RuntimeError):
    """A non-2xx answer or an unreadable response."""


class McpConnection:
    """One keep-alive TCP connection to an MCP endpoint; one request at a time."""

    def __init__(self, host: str, port: int, path: str, token: str | None = None) -> None:
        self.host, self.port, self.path = host, port, path
        self.headers = {
            "Host": f"{host}:{port}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": PROTOCOL,
        }
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._id = 0

    async def open(self, session_id: str | None = None) -> str | None:
        """Connect; initialize a new MCP session unless `session_id` is given. Returns the id."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        if session_id is not None:
            self.headers["Mcp-Session-Id"] = session_id
            return session_id
        _, headers = await self.rpc(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "tenantgate-bench", "version": "0"},
            },
        )
        sid = headers.get("mcp-session-id")
        if sid:
            self.headers["Mcp-Session-Id"] = sid
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return sid

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result, _ = await self.rpc("tools/call", {"name": name, "arguments": arguments})
        return result  # type: ignore[no-any-return]

    async def rpc(self, method: str, params: dict[str, Any]) -> tuple[Any, dict[str, str]]:
        self._id += 1
        status, headers, body = await self.post(
            {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        )
        if status != 200:
            raise HttpError(f"{method}: HTTP {status}: {body[:200]!r}")
        message = _message(headers.get("content-type", ""), body)
        if "error" in message:
            raise HttpError(f"{method}: {message['error']}")
        return message["result"], headers

    async def post(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        assert self._reader is not None
        assert self._writer is not None
        body = json.dumps(payload, separators=(",", ":")).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        await self._writer.drain()
        return await _response(self._reader)


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        key, _, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, headers, b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    if status in (202, 204):
        return status, headers, b""
    raise HttpError(f"response without a length: {headers}")


def _message(content_type: str, body: bytes) -> dict[str, Any]:
    if content_type.startswith("text/event-stream"):
        for line in body.decode().splitlines():
            if line.startswith("data:"):
                data = json.loads(line[5:])
                if "id" in data:
                    return data  # type: ignore[no-any-return]
        raise HttpError(f"no JSON-RPC answer in the event stream: {body[:200]!r}")
    return json.loads(body)  # type: ignore[no-any-return]
