"""Client ID Metadata Documents over real HTTPS on loopback: cache, size, time, redirects, shape."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tenantgate.authz.cimd import ClientDocumentError, DocumentFetcher
from tests.authz.stack import bound_socket, serve
from tests.authz.tls import localhost_cert


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    ca, cert, key = localhost_cert(tmp_path)
    sock = bound_socket()
    base = f"https://localhost:{sock.getsockname()[1]}"
    hits: list[str] = []

    def doc(path: str, **extra: Any) -> dict[str, Any]:
        return {"client_id": f"{base}{path}", "redirect_uris": ["http://127.0.0.1/cb"], **extra}

    async def handler(request: Request) -> Response:
        path = request.url.path
        hits.append(path)
        if path == "/big.json":
            return JSONResponse(doc(path, client_name="x" * 20_000))
        if path == "/slow.json":
            await asyncio.sleep(3)
        if path == "/redirect.json":
            return RedirectResponse(f"{base}/ok.json")
        if path == "/other-id.json":
            return JSONResponse(doc("/ok.json"))
        if path == "/bad-redirect.json":
            return JSONResponse({**doc(path), "redirect_uris": ["http://evil.example/cb"]})
        return JSONResponse(doc(path, client_name="Test host"))

    app = Starlette(routes=[Route("/{name}", handler)])
    with serve(app, sock, ssl_certfile=str(cert), ssl_keyfile=str(key)):
        yield base, ca, hits


def _fetcher(ca: Path, **kw: Any) -> DocumentFetcher:
    options: dict[str, Any] = {"timeout": 1.5, "max_bytes": 4096, "cache_seconds": 300}
    options.update(kw)
    return DocumentFetcher(allow_loopback=True, ca_file=ca, **options)


def test_a_document_is_fetched_once_and_then_served_from_the_cache(
    docs_server: tuple[str, Path, list[str]],
) -> None:
    base, ca, hits = docs_server
    fetcher = _fetcher(ca)

    async def twice() -> None:
        first = await fetcher.get(f"{base}/ok.json")
        second = await fetcher.get(f"{base}/ok.json")
        assert first == second
        assert first.client_name == "Test host"

    asyncio.run(twice())
    assert hits == ["/ok.json"]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/big.json", "too large"),
        ("/slow.json", "too long"),
        ("/redirect.json", "HTTP 307"),
        ("/other-id.json", "name itself"),
        ("/bad-redirect.json", "redirect_uris"),
    ],
)
def test_documents_outside_the_limits_are_refused(
    docs_server: tuple[str, Path, list[str]], path: str, why: str
) -> None:
    base, ca, _ = docs_server
    with pytest.raises(ClientDocumentError, match=why):
        asyncio.run(_fetcher(ca).get(f"{base}{path}"))


def test_a_certificate_the_server_does_not_trust_is_refused(
    docs_server: tuple[str, Path, list[str]],
) -> None:
    base, _, _ = docs_server
    fetcher = DocumentFetcher(timeout=2, max_bytes=4096, cache_seconds=0, allow_loopback=True)
    with pytest.raises(ClientDocumentError, match="could not be fetched"):
        asyncio.run(fetcher.get(f"{base}/ok.json"))
