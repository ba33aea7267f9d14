"""End to end with the MCP Python SDK's own OAuth client provider, both kinds of registration:
discovery -> registration -> authorize -> development IdP login -> consent -> token ->
tools/list -> a tool call -> refresh -> revocation -> the next call refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.authz.conftest import running_stack
from tests.authz.sdk import MemoryStorage, Person, provider_for
from tests.authz.stack import Stack, bound_socket, serve
from tests.authz.tls import localhost_cert
from tests.pg import TestDatabase

pytestmark = pytest.mark.anyio

REDIRECT = "http://127.0.0.1:9/oauth/callback"


async def _journey(stack: Stack, provider: OAuthClientProvider, storage: MemoryStorage,
                   person: Person) -> None:
    http = httpx2.AsyncClient(auth=provider, timeout=30)
    async with http, Client(streamable_http_client(stack.mcp_url, http_client=http),
                            mode="legacy", cache=None) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "list_tickets" in names
        result = await client.call_tool("list_tickets", {"status": "open"})
        assert not result.is_error
        assert [t["subject"] for t in result.structured_content["items"]] == ["Acme: login fails"]
        assert person.visits == 1
        first = storage.tokens
        assert first is not None
        assert first.refresh_token
        provider.context.token_expiry_time = time.time() - 1  # the host thinks it expired
        result = await client.call_tool("list_tickets", {})
        assert not result.is_error
        second = storage.tokens
        assert second is not None
        assert second.access_token != first.access_token
        assert second.refresh_token != first.refresh_token
        assert person.visits == 1  # refreshed, no new login
        r = httpx.post(f"{stack.as_url}/revoke", data={
            "token": second.refresh_token, "client_id": storage.client.client_id  # type: ignore[union-attr]
        })
        assert r.status_code == 200
        result = await client.call_tool("list_tickets", {})
        assert result.is_error


async def test_sdk_client_with_dynamic_registration_goes_the_whole_way(stack: Stack) -> None:
    person, storage = Person(), MemoryStorage()
    try:
        await _journey(stack, provider_for(stack.mcp_url, person, storage), storage, person)
    finally:
        person.close()
    assert storage.client is not None
    assert storage.client.client_id.startswith("tgc_")


@pytest.fixture
def cimd_stack(
    database: TestDatabase, es_key: ec.EllipticCurvePrivateKey, public_pem_file: Path,
    tmp_path: Path,
) -> Iterator[tuple[Stack, str]]:
    ca, cert, key = localhost_cert(tmp_path)
    sock = bound_socket()
    url = f"https://localhost:{sock.getsockname()[1]}/oauth/client.json"
    fetched: list[int] = []

    async def document(request: Any) -> JSONResponse:
        fetched.append(1)
        return JSONResponse({
            "client_id": url, "client_name": "sdk test host (metadata document)",
            "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "token_endpoint_auth_method": "none",
        })

    app = Starlette(routes=[Route("/oauth/client.json", document)])
    with serve(app, sock, ssl_certfile=str(cert), ssl_keyfile=str(key)), running_stack(
        database, es_key, public_pem_file, cimd_allow_loopback=True, cimd_ca_file=ca
    ) as s:
        yield s, url
    assert fetched  # the server really fetched the document


async def test_sdk_client_with_a_client_id_metadata_document_goes_the_whole_way(
    cimd_stack: tuple[Stack, str],
) -> None:
    stack, url = cimd_stack
    person, storage = Person(), MemoryStorage()
    provider = provider_for(stack.mcp_url, person, storage, metadata_url=url)
    try:
        await _journey(stack, provider, storage, person)
    finally:
        person.close()
    assert storage.client is not None
    assert storage.client.client_id == url
