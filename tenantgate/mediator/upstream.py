"""Calls to a customer's upstream HTTP API with the customer's own key injected; nothing leaks back.

An HTTP-backed tool (mediator/http_call.py) goes through :class:`UpstreamClient`; a plain GET of
one path also works on its own::

    async with UpstreamClient(EgressPolicy.from_env()) as client:
        result = await client.call(target, api_key, "/v1/billing/status")

What is enforced, in this order, before the key is even looked at: the path stays under the
connector's base URL; the URL's (scheme, host, port) is on the egress allowlist; the host is
resolved ONCE per call and every answer is judged: loopback, private, link-local and other
special addresses (mediator/pinning.py) are refused unless the allowlist names them; the
connection then goes to that checked address (the name stays in Host and in TLS SNI, so the
certificate is still verified against the name), and a request hook checks it again. TLS
certificates are verified (there is no switch to turn that off); environment proxies and .netrc
are ignored; redirects are never followed; connect/read/total timeouts; the body is streamed and
the call stops past ``max_response_bytes``. The key goes into the connector's header
(``Authorization: Bearer <key>``, any other header gets the bare key) and the header dict is
dropped when the call ends. Python cannot wipe a string, so "dropped" means no reference is kept.
Results and error messages are scrubbed of the key (raw, url-encoded and base64 forms) in case the
upstream echoes it; errors never carry upstream bodies.

Configuration (mediator environment, never database data, so whoever can edit a connector's
``base_url`` cannot send keys somewhere new):

- ``TENANTGATE_EGRESS_ALLOW``: comma-separated ``scheme://host[:port]`` entries, e.g.
  ``https://billing.example.com,http://127.0.0.1:8765``. Host names are compared exactly. An entry
  whose host is an IP literal also allows that address even when it is special (the demo's
  loopback upstream).
- ``TENANTGATE_EGRESS_ALLOW_ADDRESSES``: comma-separated addresses or networks (``10.20.0.0/16``)
  that allowed names may resolve to although they are special (an upstream on a private network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx

from tenantgate.mediator import observe
from tenantgate.mediator.egress import DEFAULT_PORTS as _DEFAULT_PORTS
from tenantgate.mediator.egress import EgressPolicy, EgressRule
from tenantgate.mediator.keys import Secret
from tenantgate.mediator.pinning import (
    PinnedURL,
    ResolveError,
    Resolver,
    pinned,
    resolve,
    system_resolver,
)
from tenantgate.mediator.scrubbing import REDACTED, scrub
from tenantgate.mediator.secrets import UpstreamCredential
from tenantgate.mediator.upstream_errors import (
    EgressDeniedError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamTooLargeError,
    UpstreamUnreachableError,
)

__all__ = [
    "REDACTED",
    "ConnectorTarget",
    "EgressDeniedError",
    "EgressPolicy",
    "EgressRule",
    "Exchange",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamLimits",
    "UpstreamProtocolError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
    "UpstreamTooLargeError",
    "UpstreamUnreachableError",
    "call_upstream",
    "scrub",
]

_FORBIDDEN_HEADERS: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "cookie", "accept-encoding"}
)

Params = Mapping[str, str | int | float | bool]


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    """Timeouts (seconds) and the response size cap (bytes)."""

    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    total_timeout: float = 15.0
    max_response_bytes: int = 1 << 20


@dataclass(frozen=True, slots=True)
class Exchange:
    """One upstream answer: its status, Retry-After header and (2xx only) body."""

    status: int
    retry_after: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class ConnectorTarget:
    """Where an HTTP-backed tool goes: the connector row's base URL and key header."""

    base_url: str
    auth_header: str = "Authorization"

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.base_url)
        if parsed.scheme not in _DEFAULT_PORTS or not parsed.hostname:
            raise UpstreamError(f"connector base URL {self.base_url!r} must be http(s)://host/...")
        if parsed.query or parsed.fragment or parsed.username or parsed.password:
            raise UpstreamError("a connector base URL must carry no query, fragment or userinfo")
        if self.auth_header.lower() in _FORBIDDEN_HEADERS or not self.auth_header.isascii():
            raise UpstreamError(f"{self.auth_header!r} cannot carry the customer's key")

    @classmethod
    def from_credential(cls, credential: UpstreamCredential) -> ConnectorTarget:
        """The target of the verified customer's connector (secrets.read_upstream_credential)."""
        if not credential.base_url:
            raise UpstreamError("the customer's connector has no base_url: it is not HTTP-backed")
        return cls(credential.base_url, credential.auth_header)

    def url(self, path: str) -> httpx.URL:
        """The URL of ``path`` under the base URL; refuses anything that could leave it."""
        if "%" in path:
            raise UpstreamError(f"upstream path {path!r} must be a plain absolute path like /v1/x")
        return self.raw_url(path)

    def raw_url(self, raw_path: str) -> httpx.URL:
        """Like url() for a path already percent-encoded (each %XX stays inside its segment)."""
        segments = raw_path.split("/")
        if (
            not raw_path.startswith("/")
            or raw_path.startswith("//")
            or any(ch in raw_path for ch in "?#\\@")
            or any(urllib.parse.unquote(seg) in (".", "..") for seg in segments)
            or not raw_path.isascii()
            or not raw_path.isprintable()
        ):
            raise UpstreamError(
                f"upstream path {raw_path!r} must be a plain absolute path like /v1/x"
            )
        base = httpx.URL(self.base_url)
        prefix = base.raw_path.split(b"?", 1)[0].rstrip(b"/")
        return base.copy_with(raw_path=prefix + raw_path.encode("ascii"))

    def header_value(self, key: Secret) -> str:
        """What the key header carries: ``Bearer <key>`` for Authorization, else the bare key."""
        if self.auth_header.lower() == "authorization":
            return f"Bearer {key.reveal()}"
        return key.reveal()


class UpstreamClient:
    """Pooled clients for upstream calls under one egress policy; use it as an async context.

    One connection pool per allowed destination (never shared between two host names, so a TLS
    connection verified for one name is never reused for another that shares its address).
    """

    def __init__(
        self,
        egress: EgressPolicy,
        limits: UpstreamLimits | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        if ssl_context is not None and (
            ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname
        ):
            raise UpstreamError("an upstream ssl context must verify certificates and host names")
        self._egress = egress
        self._limits = limits or UpstreamLimits()
        self._verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._resolver = resolver or system_resolver
        self._clients: dict[EgressRule, httpx.AsyncClient] = {}

    @property
    def limits(self) -> UpstreamLimits:
        return self._limits

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def pin(self, url: httpx.URL) -> PinnedURL:
        """Check ``url`` against the allowlist, resolve its host once, judge every answer.

        Nothing is connected to and no key is needed: call this before decrypting anything.
        """
        rule = self._egress.rule_for(url)
        try:
            addresses = await resolve(
                url.host, rule.port, self._resolver, self._limits.connect_timeout
            )
        except ResolveError as exc:
            raise UpstreamUnreachableError(str(exc)) from None
        for address in addresses:  # a name answering one special address is refused whole
            self._egress.check_address(rule, address)
        return pinned(url, addresses[0])

    async def exchange(
        self,
        target: PinnedURL,
        *,
        method: str,
        headers: Mapping[str, str],
        params: Params | None = None,
        json_body: Any = None,
        limits: UpstreamLimits | None = None,
    ) -> Exchange:
        """One HTTP exchange with the pinned address. A 2xx body is read up to the size cap.

        Raises UpstreamTimeoutError, UpstreamUnreachableError, UpstreamTooLargeError, or
        UpstreamProtocolError for a redirect. Other statuses come back for the caller to judge.
        """
        limits = limits or self._limits
        rule = self._egress.rule_for(target.origin)
        failure: UpstreamError | None = None
        try:
            async with asyncio.timeout(limits.total_timeout):
                return await self._send(rule, target, method, headers, params, json_body, limits)
        except (TimeoutError, httpx.TimeoutException):
            failure = UpstreamTimeoutError(
                f"upstream {rule.host!r} did not answer within the time limit; try again later"
            )
        except httpx.HTTPError as exc:
            failure = UpstreamUnreachableError(
                f"could not reach upstream {rule.host!r} ({type(exc).__name__}); try again later"
            )
        raise failure  # outside the except block: no chained context holding the request

    async def call(
        self,
        target: ConnectorTarget,
        key: Secret,
        path: str,
        params: Params | None = None,
    ) -> dict[str, Any]:
        """GET ``path`` with the customer's key; the JSON object answered, scrubbed of the key."""
        started = time.perf_counter()
        try:
            answer = await self._call(target, key, path, params)
            observe.upstream_done("ok", started)
            return answer
        except UpstreamError as exc:
            outcome = "denied" if isinstance(exc, EgressDeniedError) else "error"
            observe.upstream_done(outcome, started)
            failure = exc.with_message(scrub(str(exc), key))
        raise failure  # raised outside the except block: no chained context to hold the request

    async def _call(
        self, target: ConnectorTarget, key: Secret, path: str, params: Params | None
    ) -> dict[str, Any]:
        url = target.url(path)
        pin = await self.pin(url)  # before any connection is opened
        headers = {target.auth_header: target.header_value(key)}
        answer = await self.exchange(pin, method="GET", headers=headers, params=params)
        del headers
        host = url.host
        status = answer.status
        if status in (401, 403):
            raise UpstreamStatusError(
                f"upstream {host!r} refused the customer's key (HTTP {status}): "
                "store a valid one with `tenantgate secrets set`",
                status,
            )
        if not 200 <= status < 300:
            raise UpstreamStatusError(f"upstream {host!r} answered HTTP {status}", status)
        document = parse_json_object(answer.body, host)
        scrubbed = scrub(document, key)
        assert isinstance(scrubbed, dict)
        return scrubbed

    def _client_for(self, rule: EgressRule) -> httpx.AsyncClient:
        client = self._clients.get(rule)
        if client is None:
            client = httpx.AsyncClient(
                verify=self._verify,
                follow_redirects=False,
                trust_env=False,
                event_hooks={"request": [self._recheck_egress]},
            )
            self._clients[rule] = client
        return client

    async def _send(
        self,
        rule: EgressRule,
        target: PinnedURL,
        method: str,
        headers: Mapping[str, str],
        params: Params | None,
        json_body: Any,
        limits: UpstreamLimits,
    ) -> Exchange:
        client = self._client_for(rule)
        all_headers = {
            **headers,
            "Host": target.host_header,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        timeout = httpx.Timeout(
            limits.read_timeout, connect=limits.connect_timeout, pool=limits.connect_timeout
        )
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
        request = client.build_request(
            method,
            target.url,
            params=dict(params or {}),
            json=json_body,
            headers=all_headers,
            timeout=timeout,
            extensions=extensions,
        )
        del all_headers
        try:
            response = await client.send(request, stream=True)
        finally:
            del request
        try:
            return await self._read(response, rule, limits.max_response_bytes)
        finally:
            await response.aclose()

    async def _read(self, response: httpx.Response, rule: EgressRule, cap: int) -> Exchange:
        status = response.status_code
        retry_after = response.headers.get("retry-after")
        if 300 <= status < 400:
            raise UpstreamProtocolError(
                f"upstream {rule.host!r} answered a redirect; redirects are refused"
            )
        if not 200 <= status < 300:
            return Exchange(status, retry_after, b"")  # error bodies are never read or shown
        declared = response.headers.get("content-length", "")
        too_large = UpstreamTooLargeError(f"upstream answer is larger than the {cap}-byte limit")
        if declared.isdigit() and int(declared) > cap:
            raise too_large
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > cap:
                raise too_large
        return Exchange(status, retry_after, bytes(body))

    async def _recheck_egress(self, request: httpx.Request) -> None:
        """Defence in depth, just before connecting: a checked destination, a checked address."""
        host = _host_of(request.headers.get("host", ""))
        rule = self._egress.rule_for(request.url.copy_with(host=host))
        try:
            address = ipaddress.ip_address(request.url.host)
        except ValueError:
            raise EgressDeniedError("an upstream request must go to a pinned address") from None
        self._egress.check_address(rule, address)


def _host_of(host_header: str) -> str:
    """The host part of a Host header value (``name:port`` or ``[v6]:port``)."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def parse_json_object(body: bytes, host: str) -> dict[str, Any]:
    """The JSON object in ``body``, else UpstreamProtocolError."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise UpstreamProtocolError(f"upstream {host!r} did not answer with a JSON object")
    return document


async def call_upstream(
    target: ConnectorTarget,
    key: Secret,
    path: str,
    params: Params | None = None,
    *,
    egress: EgressPolicy,
    limits: UpstreamLimits | None = None,
    ssl_context: ssl.SSLContext | None = None,
    resolver: Resolver | None = None,
) -> dict[str, Any]:
    """One upstream call with a client of its own (see UpstreamClient.call)."""
    async with UpstreamClient(egress, limits, ssl_context=ssl_context, resolver=resolver) as client:
        return await client.call(target, key, path, params)
