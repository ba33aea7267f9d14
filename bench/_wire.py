"""A loopback TCP proxy in front of PostgreSQL that counts the client's round trips.

A round trip is a point where the client must wait for the server: a Sync message (end of an
extended-protocol batch, one per pipeline sync or per un-pipelined statement) or a simple Query
message. Connect through it with ``sslmode=disable`` and ``gssencmode=disable`` so the stream is
readable; only messages sent while ``counting`` is on are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter


class WireCounter:
    """Forwards bytes both ways; parses the frontend stream and counts message types."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.counting = False
        self.messages: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def round_trips(self) -> int:
        return self.messages["S"] + self.messages["Q"]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        back = asyncio.create_task(self._pipe(up_reader, writer))
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._frontend(reader, up_writer)
        finally:
            back.cancel()
            for w in (writer, up_writer):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    async def _frontend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            # the startup packet has no type byte
            head = await reader.readexactly(4)
            (length,) = struct.unpack("!i", head)
            writer.write(head + await reader.readexactly(length - 4))
            while True:
                kind = await reader.readexactly(1)
                head = await reader.readexactly(4)
                (length,) = struct.unpack("!i", head)
                body = await reader.readexactly(length - 4)
                if self.counting:
                    self.messages[kind.decode("latin-1")] += 1
                writer.write(kind + head + body)
                await writer.drain()
