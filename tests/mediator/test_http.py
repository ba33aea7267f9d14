"""Streamable HTTP with the SDK's own client: auth, catalog, transport checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.mediator.conftest import OpenFn, serve_env

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def mcp_client(url: str, token: str, mode: Any = "legacy") -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with (
        http,
        Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client,
    ):
        yield client


@pytest.mark.parametrize("mode", ["legacy", "auto", "2026-07-28"])
async def test_sdk_client_over_http_reads_its_customer(
    http_url: str, open_session: OpenFn, mode: str
) -> None:
    s = open_session("Acme")
    async with mcp_client(http_url, s.token, mode) as client:
        tools = await client.list_tools()
        assert "list_tickets" in {t.name for t in tools.tools}
        result = await client.call_tool("list_tickets", {"status": "open"})
    assert not result.is_error
    items = result.structured_content["items"]
    assert [t["subject"] for t in items] == ["Acme: login fails"]


async def test_tools_list_differs_per_session_catalog(http_url: str, open_session: OpenFn) -> None:
    narrow = open_session("Acme", scopes=["read:tickets"])
    wide = open_session("Acme")
    async with mcp_client(http_url, narrow.token) as client:
        narrow_names = {t.name for t in (await client.list_tools()).tools}
    async with mcp_client(http_url, wide.token) as client:
        wide_names = {t.name for t in (await client.list_tools()).tools}
    assert narrow_names == {"list_tickets", "search_tickets"}
    assert {"issue_refund", "get_customer_profile"} <= wide_names


def test_missing_token_is_401_pointing_to_resource_metadata(http_url: str) -> None:
    r = httpx.post(http_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    meta_url = challenge.split('resource_metadata="')[1].rstrip('"')
    assert meta_url.endswith("/.well-known/oauth-protected-resource/mcp")
    port = http_url.split(":")[2].split("/")[0]
    meta = httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp").json()
    assert meta["resource"] == "http://127.0.0.1:8765/mcp"
    assert meta["authorization_servers"]


def test_bad_token_is_401(http_url: str) -> None:
    r = httpx.post(
        http_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": "Bearer not-a-jwt"},
    )
    assert r.status_code == 401


def test_origin_from_another_site_is_refused(http_url: str, open_session: OpenFn) -> None:
    s = open_session("Acme")
    r = httpx.post(
        http_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {s.token}", "Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    ok = httpx.post(
        http_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {s.token}", "Origin": "http://localhost:6274"},
    )
    assert ok.status_code == 200


def test_foreign_host_header_is_refused(http_url: str) -> None:
    r = httpx.post(
        http_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Host": "evil.example"},
    )
    assert r.status_code == 421


def test_oversized_request_is_refused(http_url: str, open_session: OpenFn) -> None:
    s = open_session("Acme")
    big = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "search_tickets", "arguments": {"query": "x" * 400_000}},
    }
    r = httpx.post(http_url, json=big, headers={"Authorization": f"Bearer {s.token}"})
    assert r.status_code == 413


def test_get_stream_is_not_offered(http_url: str, open_session: OpenFn) -> None:
    s = open_session("Acme")
    r = httpx.get(
        http_url, headers={"Authorization": f"Bearer {s.token}", "Accept": "text/event-stream"}
    )
    assert r.status_code == 405


@pytest.mark.parametrize("workers", [1, 2])
async def test_tenantgate_serve_http_answers_the_sdk_client(
    settings: Any, open_session: OpenFn, workers: int
) -> None:
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    env = serve_env(settings)
    cmd = [
        sys.executable,
        "-m",
        "tenantgate.cli.serve",
        "--transport",
        "http",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(cmd, env=env, cwd=repo, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(
                    f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource"
                ).is_success:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        assert (
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 401
        )
        async with mcp_client(url, open_session("Acme").token) as client:
            r = await client.call_tool("get_subscription", {})
        assert not r.is_error
        assert r.structured_content["plan"] == "business"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "hardening: core dumps off, process not dumpable" in err


def test_host_and_origin_allowlists_are_exact() -> None:
    from tenantgate.mediator.http import LOOPBACK_HOSTS, LOOPBACK_ORIGINS, _patterns

    hosts, origins = _patterns(LOOPBACK_HOSTS), _patterns(LOOPBACK_ORIGINS)
    for ok in ("127.0.0.1:8765", "localhost", "LOCALHOST:1", "[::1]:443"):
        assert hosts.match(ok)
    for bad in (
        "evil.example",
        "127.0.0.1:80@evil.example",
        "localhost.evil.example:80",
        "127.0.0.1:8765x",
        "127.0.0.10:80",
    ):
        assert not hosts.match(bad)
    assert origins.match("http://localhost:6274")
    for bad in (
        "http://localhost:6274.evil.example",
        "https://localhost:6274",
        "null",
        "http://localhost.evil.example",
    ):
        assert not origins.match(bad)


async def test_a_request_key_over_http_never_gives_a_free_read_nor_fits_other_arguments(
    http_url: str, open_session: OpenFn, database: Any, world: Any
) -> None:
    s = open_session("Acme")
    meta: Any = {"dev.tenantgate/request-id": "retry-1"}
    async with mcp_client(http_url, s.token) as client:
        for _ in range(2):
            r = await client.call_tool("account_health", {}, meta=meta)
            assert not r.is_error
        r = await client.call_tool("list_tickets", {}, meta=meta)
        assert r.is_error
        assert "request id already used" in r.content[0].text  # type: ignore[union-attr]
    with database.connect() as conn:
        balance = conn.execute(
            "select balance from tenantgate.credit_accounts where org_id = %s",
            (world.northwind.org_id,),
        ).fetchone()
    assert balance == (1000 - 2 - 2,)
