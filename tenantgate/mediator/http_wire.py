"""uvicorn's httptools protocol with one write per response instead of two.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, then the body in a second write: two system calls, two loopback segments,
two wake-ups of the client. On this machine each write of a small answer costs about as much CPU
as the whole JSON-RPC dispatch. Here a header block is held back until the body follows (in the
same step of the event loop, as the mediator always sends them) and both leave in one write. If
no body follows in that step, the held header block is written at the end of the loop iteration,
or before the connection closes: bytes are never reordered or lost, at worst delayed by one loop
iteration. Parsing, limits, keep-alive and flow control stay uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A final response's header block (1xx interim answers such as 100 Continue go out at once).
_FINAL = tuple(f"HTTP/1.1 {n}".encode() for n in range(2, 6))


class CoalescingTransport:
    """Delegates to a transport, joining a held header block with the write that follows it."""

    __slots__ = ("_held", "_inner", "_loop")

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._inner.write(held + bytes(data))
        elif bytes(data[:10]).startswith(_FINAL) and bytes(data[-4:]) == b"\r\n\r\n":
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._inner.write(data)

    def flush(self) -> None:
        """Write a held header block now (a no-op when its body already took it along)."""
        if self._held is not None:
            held, self._held = self._held, None
            if not self._inner.is_closing():
                self._inner.write(held)

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        self._held = None
        self._inner.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a CoalescingTransport (`uvicorn.run(http=...)`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport, self.loop)))


# What `uvicorn.run(http=...)` takes: an import string works in spawned worker processes too.
HTTP_PROTOCOL = "tenantgate.mediator.http_wire:CoalescingHttpToolsProtocol"
