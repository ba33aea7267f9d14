"""`tenantgate demo` starts the authorization server next to the mediator; a host connects."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.authz.sdk import MemoryStorage, Person, provider_for
from tests.pg import REPO

pytestmark = pytest.mark.anyio


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        try:
            seen += lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"demo did not print {marker!r}: {seen[-2000:]}") from None
    return seen


def _wait_for_port(url: str) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def test_demo_prints_the_connector_url_and_the_sdk_client_gets_a_token_through_it(
    tmp_path: Path,
) -> None:
    errors = (tmp_path / "demo.stderr").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenantgate.cli.demo", "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=errors, text=True,
    )
    person, storage = Person(), MemoryStorage()
    try:
        out = _read_until(proc, "approvals for operators:", 240)
        url = re.search(r"custom connector[^:]*: (\S+)", out)
        assert url is not None, out[-1500:]
        assert "mcp-remote" in out
        assert "@modelcontextprotocol/inspector@2" in out
        _wait_for_port(url.group(1))  # the demo prints first, then starts serving
        http = httpx2.AsyncClient(auth=provider_for(url.group(1), person, storage), timeout=30)
        async with http, Client(streamable_http_client(url.group(1), http_client=http),
                                mode="legacy", cache=None) as client:
            result = await client.call_tool("list_tickets", {})
        assert not result.is_error
        assert person.visits == 1
    finally:
        person.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        errors.close()
        print((tmp_path / "demo.stderr").read_text()[-3000:])  # shown when the test fails
