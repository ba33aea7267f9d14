"""OAuth Client ID Metadata Documents: the client id is an https URL the server fetches.

The fetch is SSRF-safe: the host name is resolved once, every address must be a public unicast
address (no private, loopback, link-local, multicast or reserved range), and the connection goes
to the address that was checked (the certificate is still verified for the host name), so a DNS
answer cannot change between the check and the connection. No redirects, a time limit, a size
limit. Documents are cached for a while; failures are not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tenantgate.authz.redirects import registrable

logger = logging.getLogger("tenantgate.authz.cimd")


class ClientDocumentError(Exception):
    """The client id document could not be used; the message says why (shown to the user)."""


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    client_name: str
    redirect_uris: list[str]
    kind: str  # "cimd" | "dcr"


def is_document_url(client_id: str) -> bool:
    try:
        p = urlsplit(client_id)
        _ = p.port
    except ValueError:
        return False
    return (
        p.scheme == "https"
        and bool(p.hostname)
        and p.path not in ("", "/")
        and not p.fragment
        and p.username is None
        and p.password is None
        and len(client_id) <= 2000
    )


def address_allowed(address: str, allow_loopback: bool) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if allow_loopback and ip.is_loopback:
        return True
    return bool(ip.is_global) and not ip.is_multicast


class DocumentFetcher:
    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int,
        cache_seconds: int,
        allow_loopback: bool = False,
        ca_file: Path | None = None,
    ) -> None:
        self.timeout, self.max_bytes, self.cache_seconds = timeout, max_bytes, cache_seconds
        self.allow_loopback = allow_loopback
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        )
        self._cache: dict[str, tuple[float, Client]] = {}
        if allow_loopback:
            logger.warning("DEVELOPMENT: client id documents may be fetched from loopback")

    async def get(self, client_id: str) -> Client:
        hit = self._cache.get(client_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            client = await asyncio.wait_for(self._fetch(client_id), self.timeout)
        except TimeoutError:
            raise ClientDocumentError("the client id document took too long") from None
        if self.cache_seconds:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[client_id] = (time.monotonic() + self.cache_seconds, client)
        return client

    async def _resolve(self, host: str, port: int) -> str:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=0, proto=6
            )
        except OSError:
            raise ClientDocumentError("the client id's host does not resolve") from None
        addresses = sorted({str(info[4][0]) for info in infos})
        if not addresses:
            raise ClientDocumentError("the client id's host does not resolve")
        for address in addresses:
            if not address_allowed(address, self.allow_loopback):
                raise ClientDocumentError(
                    "the client id's host resolves to a private or reserved address"
                )
        return addresses[0]

    async def _fetch(self, client_id: str) -> Client:
        if not is_document_url(client_id):
            raise ClientDocumentError("a client id document URL must be https with a path")
        parts = urlsplit(client_id)
        host = parts.hostname
        assert host is not None
        port = parts.port or 443
        address = await self._resolve(host, port)
        literal = f"[{address}]" if ":" in address else address
        target = parts._replace(netloc=f"{literal}:{port}").geturl()
        headers = {"host": parts.netloc, "accept": "application/json"}
        try:
            async with httpx.AsyncClient(
                verify=self._verify, timeout=self.timeout, follow_redirects=False, trust_env=False
            ) as http, http.stream(
                "GET", target, headers=headers, extensions={"sni_hostname": host}
            ) as resp:
                if resp.status_code != 200:
                    raise ClientDocumentError(
                        f"the client id document answered HTTP {resp.status_code}"
                    )
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        raise ClientDocumentError("the client id document is too large")
        except httpx.HTTPError as exc:
            raise ClientDocumentError(
                f"the client id document could not be fetched ({type(exc).__name__})"
            ) from None
        return parse_document(client_id, bytes(body))


def parse_document(client_id: str, body: bytes) -> Client:
    try:
        doc = json.loads(body)
    except ValueError:
        raise ClientDocumentError("the client id document is not JSON") from None
    if not isinstance(doc, dict) or doc.get("client_id") != client_id:
        raise ClientDocumentError("the client id document must name itself as client_id")
    uris = doc.get("redirect_uris")
    if (
        not isinstance(uris, list)
        or not 1 <= len(uris) <= 10
        or not all(isinstance(u, str) and registrable(u) for u in uris)
    ):
        raise ClientDocumentError(
            "redirect_uris must list 1 to 10 https or loopback http URLs"
        )
    method = doc.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise ClientDocumentError("only public clients (token_endpoint_auth_method none)")
    name = doc.get("client_name")
    return Client(client_id, name[:200] if isinstance(name, str) else "", list(uris), "cimd")
