"""Calls to a customer's upstream HTTP API with the customer's own key injected; nothing leaks back.

The gate calls, for an HTTP-backed tool, once it has verified the session::

    credential = secrets.read_upstream_credential(conn, key_provider)  # verified customer only
    target = ConnectorTarget.from_credential(credential)
    async with UpstreamClient(EgressPolicy.from_env()) as client:
        result = await client.call(target, credential.api_key, "/v1/billing/status")

or, for one call, ``await call_upstream(target, credential.api_key, "/v1/...", egress=policy)``.

What is enforced, in this order: the path stays under the connector's base URL; the URL's
(scheme, host, port) is on the egress allowlist (checked before any connection, and again in a
request hook); TLS certificates are verified (there is no switch to turn that off); environment
proxies and .netrc are ignored; redirects are never followed; connect/read/total timeouts; the
body is streamed and the call stops past ``max_response_bytes``; only a JSON object is returned.
The key goes into the connector's header (``Authorization: Bearer <key>``, any other header gets
the bare key) and the header dict is dropped when the call ends. Python cannot wipe a string, so
"dropped" means no reference is kept. Results and error messages are scrubbed of the key (raw,
url-encoded and base64 forms) in case the upstream echoes it; errors never carry upstream bodies.

The allowlist (``TENANTGATE_EGRESS_ALLOW``): comma-separated ``scheme://host[:port]`` entries,
e.g. ``https://billing.example.com,http://127.0.0.1:8765``. Host names are compared exactly; DNS
is not pinned, so list names you control.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx

from mediator import observe
from mediator.keys import Secret
from mediator.secrets import UpstreamCredential

__all__ = [
    "ConnectorTarget",
    "EgressDeniedError",
    "EgressPolicy",
    "EgressRule",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamLimits",
    "call_upstream",
    "scrub",
]

ENV_EGRESS_ALLOW: Final = "TENANTGATE_EGRESS_ALLOW"
REDACTED: Final = "[redacted]"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_FORBIDDEN_HEADERS: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "cookie", "accept-encoding"}
)

Params = Mapping[str, str | int | float | bool]


class UpstreamError(Exception):
    """the upstream call failed: try again later or check the connector's configuration."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class EgressDeniedError(UpstreamError):
    """the upstream address is not on the egress allowlist (TENANTGATE_EGRESS_ALLOW)."""


@dataclass(frozen=True, slots=True)
class EgressRule:
    """One allowed destination."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """The destinations upstream calls may reach; everything else is refused before connecting."""

    rules: frozenset[EgressRule]

    @classmethod
    def parse(cls, spec: str) -> EgressPolicy:
        """Parse ``scheme://host[:port]`` entries separated by commas."""
        rules = set()
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            parsed = urllib.parse.urlsplit(entry)
            if parsed.scheme not in _DEFAULT_PORTS or not parsed.hostname:
                raise ValueError(f"egress entry {entry!r} must look like https://host[:port]")
            if parsed.path not in ("", "/") or parsed.query or parsed.username:
                raise ValueError(f"egress entry {entry!r} must hold only scheme, host and port")
            port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
            rules.add(EgressRule(parsed.scheme, parsed.hostname.lower(), port))
        return cls(frozenset(rules))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EgressPolicy:
        """The policy in TENANTGATE_EGRESS_ALLOW (empty: every upstream call is refused)."""
        env = os.environ if environ is None else environ
        return cls.parse(env.get(ENV_EGRESS_ALLOW, ""))

    def check(self, url: httpx.URL) -> None:
        """Raise EgressDeniedError unless the URL's (scheme, host, port) is allowed."""
        scheme = url.scheme.lower()
        port = url.port or _DEFAULT_PORTS.get(scheme, 0)
        rule = EgressRule(scheme, url.host.lower(), port)
        if rule not in self.rules:
            raise EgressDeniedError(
                f"egress to {str(rule)!r} is not allowed: add it to {ENV_EGRESS_ALLOW} "
                "if this connector should reach it"
            )


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    """Timeouts (seconds) and the response size cap (bytes)."""

    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    total_timeout: float = 15.0
    max_response_bytes: int = 1 << 20


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
        segments = path.split("/")
        if (
            not path.startswith("/")
            or path.startswith("//")
            or any(ch in path for ch in "?#\\%@")
            or any(seg in (".", "..") for seg in segments)
            or not path.isascii()
        ):
            raise UpstreamError(f"upstream path {path!r} must be a plain absolute path like /v1/x")
        base = httpx.URL(self.base_url)
        return base.copy_with(path=base.path.rstrip("/") + path)


class UpstreamClient:
    """A pooled client for upstream calls under one egress policy; use it as an async context."""

    def __init__(
        self,
        egress: EgressPolicy,
        limits: UpstreamLimits | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if ssl_context is not None and (
            ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname
        ):
            raise UpstreamError("an upstream ssl context must verify certificates and host names")
        self._egress = egress
        self._limits = limits or UpstreamLimits()
        timeout = httpx.Timeout(
            self._limits.read_timeout,
            connect=self._limits.connect_timeout,
            pool=self._limits.connect_timeout,
        )
        self._client = httpx.AsyncClient(
            verify=ssl_context if ssl_context is not None else True,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            event_hooks={"request": [self._recheck_egress]},
        )

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
        await self._client.aclose()

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
            message = scrub(str(exc), key)
            failure: UpstreamError = type(exc)(message)
        raise failure  # raised outside the except block: no chained context to hold the request

    async def _call(
        self, target: ConnectorTarget, key: Secret, path: str, params: Params | None
    ) -> dict[str, Any]:
        url = target.url(path)
        self._egress.check(url)  # before any connection is opened
        failure: str | None = None
        try:
            async with asyncio.timeout(self._limits.total_timeout):
                body = await self._fetch(url, target.auth_header, key, params)
        except (TimeoutError, httpx.TimeoutException):
            failure = f"upstream {url.host!r} did not answer within the time limit; try again"
        except httpx.HTTPError as exc:
            failure = f"could not reach upstream {url.host!r} ({type(exc).__name__}); try again"
        if failure is not None:
            raise UpstreamError(failure)
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise UpstreamError(f"upstream {url.host!r} did not answer with a JSON object")
        scrubbed = scrub(document, key)
        assert isinstance(scrubbed, dict)
        return scrubbed

    async def _fetch(
        self, url: httpx.URL, header: str, key: Secret, params: Params | None
    ) -> bytes:
        headers = {
            header: f"Bearer {key.reveal()}" if header.lower() == "authorization" else key.reveal(),
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        request = self._client.build_request("GET", url, params=dict(params or {}), headers=headers)
        del headers
        try:
            response = await self._client.send(request, stream=True)
        finally:
            del request
        try:
            return await self._read_body(response, url)
        finally:
            await response.aclose()

    async def _read_body(self, response: httpx.Response, url: httpx.URL) -> bytes:
        status = response.status_code
        if 300 <= status < 400:
            raise UpstreamError(f"upstream {url.host!r} answered a redirect; redirects are refused")
        if status in (401, 403):
            raise UpstreamError(
                f"upstream {url.host!r} refused the customer's key (HTTP {status}): "
                "store a valid one with `tenantgate secrets set`"
            )
        if not 200 <= status < 300:
            raise UpstreamError(f"upstream {url.host!r} answered HTTP {status}")
        cap = self._limits.max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise UpstreamError(f"upstream answer is larger than the {cap}-byte limit")
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > cap:
                raise UpstreamError(f"upstream answer is larger than the {cap}-byte limit")
        return bytes(body)

    async def _recheck_egress(self, request: httpx.Request) -> None:
        self._egress.check(request.url)  # defence in depth: runs before the connection


async def call_upstream(
    target: ConnectorTarget,
    key: Secret,
    path: str,
    params: Params | None = None,
    *,
    egress: EgressPolicy,
    limits: UpstreamLimits | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    """One upstream call with a client of its own (see UpstreamClient.call)."""
    async with UpstreamClient(egress, limits, ssl_context=ssl_context) as client:
        return await client.call(target, key, path, params)


def scrub(value: Any, key: Secret) -> Any:
    """``value`` (JSON-like) with every occurrence of the key replaced by [redacted]."""
    needles = _needles(key)
    return _scrub(value, needles)


def _needles(key: Secret) -> list[str]:
    raw = key.reveal()
    if not raw:
        return []
    forms = {
        raw,
        urllib.parse.quote(raw, safe=""),
        urllib.parse.quote_plus(raw),
        base64.b64encode(raw.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(raw.encode()).decode().rstrip("="),
    }
    return sorted(forms, key=len, reverse=True)


def _scrub(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, REDACTED)
        return value
    if isinstance(value, dict):
        return {_scrub(k, needles): _scrub(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item, needles) for item in value]
    return value
