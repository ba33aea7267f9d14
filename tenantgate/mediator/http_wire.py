"""uvicorn's httptools protocol with one write per response instead of two.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, then the body in a second write: two system calls, two loopback segments,
two wake-ups of the client. Here a final response's header block is held back and leaves with
the write that follows it (the body, as the mediator always sends it right away). A header block
with nothing after it (a HEAD answer, an app that stops after the start) is written when uvicorn
completes the response or closes the connection: bytes are never reordered or lost. Nothing is
deferred to a later loop iteration (a `call_soon` flush per response cost a third of the calls/s
at concurrency 8 in bench/mcp_e2e.py). Parsing, limits, keep-alive and flow control stay uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A final response's header block (1xx interim answers such as 100 Continue go out at once).
_FINAL = tuple(f"HTTP/1.1 {n}".encode() for n in range(2, 6))


class CoalescingTransport:
    """Delegates to a transport, joining a held header block with the write that follows it."""

    __slots__ = ("_held", "_inner")

    def __init__(self, inner: asyncio.Transport) -> None:
        self._inner = inner
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._inner.write(held + bytes(data))
        elif bytes(data[:10]).startswith(_FINAL) and bytes(data[-4:]) == b"\r\n\r\n":
            self._held = bytes(data)
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
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport)))

    def on_response_complete(self) -> None:
        # uvicorn calls this as the response's last message is sent: nothing may stay held
        if isinstance(self.transport, CoalescingTransport):
            self.transport.flush()
        super().on_response_complete()


# What `uvicorn.run(http=...)` takes: an import string works in spawned worker processes too.
HTTP_PROTOCOL = "tenantgate.mediator.http_wire:CoalescingHttpToolsProtocol"
