"""One write per response (mediator/http_wire.py): bytes are joined, never reordered, never lost,
never left waiting once the response is complete."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from tenantgate.mediator.http_wire import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    """A transport that records each write as one item."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return f"extra:{name}"


def _wire() -> tuple[Recorder, CoalescingTransport]:
    inner = Recorder()
    return inner, CoalescingTransport(inner)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_response_header_block_and_its_body_leave_in_one_write() -> None:
    inner, wire = _wire()
    wire.write(HEAD)
    assert inner.writes == []
    wire.write(b"{}")
    assert inner.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)
    assert inner.writes == [HEAD + b"{}"]  # the scheduled flush finds nothing left


@pytest.mark.anyio
async def test_a_header_block_without_a_body_is_written_by_flush_and_never_reordered() -> None:
    inner, wire = _wire()
    wire.write(HEAD)
    wire.flush()  # what the protocol does when uvicorn completes the response
    assert inner.writes == [HEAD]
    wire.write(b"{}")
    assert inner.writes == [HEAD, b"{}"]


@pytest.mark.anyio
async def test_an_interim_100_continue_goes_out_at_once() -> None:
    inner, wire = _wire()
    wire.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert inner.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


@pytest.mark.anyio
async def test_close_writes_a_held_header_block_first_and_abort_drops_it() -> None:
    inner, wire = _wire()
    wire.write(HEAD)
    wire.close()
    assert inner.writes == [HEAD]
    assert inner.closed
    inner, wire = _wire()
    wire.write(HEAD)
    wire.abort()
    await asyncio.sleep(0)
    assert inner.writes == []
    assert inner.aborted


@pytest.mark.anyio
async def test_everything_else_is_the_transports_own() -> None:
    inner, wire = _wire()
    assert wire.get_extra_info("peername") == "extra:peername"
    wire.write(b"body bytes that are no header block")
    assert inner.writes == [b"body bytes that are no header block"]


def _responses(data: bytes) -> list[bytes]:
    """The status lines of the complete HTTP responses in `data` (Content-Length framed)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        out.append(head.split(b"\r\n", 1)[0])
        data = rest[length:]
    return out


def test_pipelined_requests_on_one_connection_get_complete_answers_in_order(http_url: str) -> None:
    port = int(http_url.split(":")[2].split("/")[0])
    probe = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    unauthorized = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Accept: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(probe + unauthorized + probe)
        data = b""
        while data.count(b"HTTP/1.1 ") < 3 or not data.endswith((b"}", b"unauthorized")):
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    ok, refused = b"HTTP/1.1 200 OK", b"HTTP/1.1 401 Unauthorized"
    assert _responses(data) == [ok, refused, ok]


def test_a_head_answer_without_a_body_write_is_not_held_back(http_url: str) -> None:
    port = int(http_url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = s.recv(65536)  # times out (fails) if the header block stays held
    assert head.startswith(b"HTTP/1.1 ")
    assert head.endswith(b"\r\n\r\n")
