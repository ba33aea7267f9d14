"""The executor of a ``kind: http`` tool: one call to the customer's API, shaped like a SQL result.

    outcome = await call_http_tool(
        spec, args,                                # HttpToolSpec, validated arguments
        base_url=row.base_url, auth_header=row.auth_header,
        key=lambda: secrets.unseal(row.ciphertext, row.key_id, key_provider),
        client=upstream_client,                    # UpstreamClient(EgressPolicy.from_env())
        policy=data_policy, scopes=verified.scopes,
        idempotency_key=request_key,               # side effects: sent as Idempotency-Key
    )
    outcome.result  # what the host sees; outcome.status/.bytes/.latency_ms/.attempts: the audit

Order: arguments into the path/query/body (InvalidArguments), the egress allowlist and the pinned
DNS answer (EgressRefused), and only then ``key()`` decrypts. Reads are retried on 429/502/503/504,
timeouts and refused connections, with exponential backoff, waiting for ``Retry-After`` when the
upstream sends one (up to ``limits.max_retry_after``, within the total timeout); side effects are
never retried. The answer is scrubbed of the key, projected to the declared fields (nothing else
leaves; a field that is not a scalar comes back null) and shaped like a SQL tool's rows:
``sensitive`` masked unless the session's scopes allow it, ``secret`` dropped, row and byte caps.
Failures raise an ``HttpToolFailed`` subclass (mediator/errors.py; CredentialUnreadable when the
key does not decrypt) whose message never holds the key or the upstream's body.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tenantgate.mediator import errors as E
from tenantgate.mediator import pgp
from tenantgate.mediator.http_tools import HttpToolSpec, pointer_tokens
from tenantgate.mediator.keys import Secret, UnknownKeyError
from tenantgate.mediator.pinning import PinnedURL
from tenantgate.mediator.shaping import DataPolicy, shape_rows
from tenantgate.mediator.upstream import (
    ConnectorTarget,
    EgressDeniedError,
    Exchange,
    UpstreamClient,
    UpstreamError,
    UpstreamLimits,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamTooLargeError,
    UpstreamUnreachableError,
    parse_json_object,
    scrub,
)

__all__ = ["HttpOutcome", "call_http_tool"]

logger = logging.getLogger(__name__)

KeySource = Secret | Callable[[], Secret]
_RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
_FAILURES: Final[dict[type[UpstreamError], type[E.MediatorError]]] = {
    EgressDeniedError: E.EgressRefused,
    UpstreamTimeoutError: E.UpstreamTimeout,
    UpstreamTooLargeError: E.UpstreamTooLarge,
    UpstreamUnreachableError: E.UpstreamUnavailable,
    UpstreamProtocolError: E.UpstreamInvalid,
}


@dataclass(frozen=True, slots=True)
class HttpOutcome:
    """A successful call: the shaped result, and what the outcome audit row records."""

    result: dict[str, Any]
    status: int
    bytes: int
    latency_ms: float
    attempts: int


async def call_http_tool(
    spec: HttpToolSpec,
    args: Mapping[str, Any],
    *,
    base_url: str,
    auth_header: str,
    key: KeySource,
    client: UpstreamClient,
    policy: DataPolicy,
    scopes: Iterable[str],
    idempotency_key: str | None = None,
) -> HttpOutcome:
    """Call the customer's API for ``spec`` (see the module docstring for the order of checks)."""
    call = _Call(spec, client, time.perf_counter())
    try:
        return await call.run(args, base_url, auth_header, key, policy, scopes, idempotency_key)
    except UpstreamError as exc:
        failure = call.failure(_FAILURES.get(type(exc), E.UpstreamFailed), str(exc))
    raise failure  # outside the except block: no context chain that could hold the request


class _Call:
    """The state of one call: its deadline, attempts and the key once decrypted (for scrubbing)."""

    def __init__(self, spec: HttpToolSpec, client: UpstreamClient, started: float) -> None:
        self.spec = spec
        self.client = client
        self.started = started
        self.attempts = 0
        self.status: int | None = None
        self.secret: Secret | None = None

    async def run(
        self,
        args: Mapping[str, Any],
        base_url: str,
        auth_header: str,
        key: KeySource,
        policy: DataPolicy,
        scopes: Iterable[str],
        idempotency_key: str | None,
    ) -> HttpOutcome:
        spec = self.spec
        header = auth_header if spec.http.auth == "connector" else "Authorization"
        target = ConnectorTarget(base_url, header)
        url = target.raw_url(spec.render_path(args))
        pin = await self.client.pin(url)  # egress allowlist + one DNS answer, judged
        self.secret = self._decrypt(key)  # only now, after every egress check
        headers = {header: target.header_value(self.secret)}
        if spec.side_effect and idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        answer = await self._exchange(pin, headers, args)
        del headers
        document = scrub(parse_json_object(answer.body, url.host), self.secret)
        shaped = _shape(spec, _project(spec, document), policy, scopes)
        latency = (time.perf_counter() - self.started) * 1000
        logger.info(
            "http tool %s: HTTP %d, %d bytes, %d attempts, %.1f ms",
            spec.name, answer.status, len(answer.body), self.attempts, latency,
        )  # fmt: skip
        return HttpOutcome(shaped, answer.status, len(answer.body), latency, self.attempts)

    def _decrypt(self, key: KeySource) -> Secret:
        if not callable(key):
            return key
        try:
            return key()
        except (UnknownKeyError, pgp.DecryptionError) as exc:
            reason = type(exc).__name__
        raise self.failure(E.CredentialUnreadable, f"{E.CredentialUnreadable.__doc__} ({reason})")

    async def _exchange(
        self, pin: PinnedURL, headers: dict[str, str], args: Mapping[str, Any]
    ) -> Exchange:
        spec, limits = self.spec, self.spec.http.limits
        deadline = self.started + limits.total_timeout
        while True:
            self.attempts += 1
            remaining = deadline - time.perf_counter()
            try:
                answer = await self.client.exchange(
                    pin,
                    method=spec.http.method,
                    headers=headers,
                    params=spec.render_query(args),
                    json_body=spec.render_body(args),
                    limits=UpstreamLimits(
                        connect_timeout=min(limits.connect_timeout, max(remaining, 0.001)),
                        read_timeout=limits.read_timeout,
                        total_timeout=max(remaining, 0.001),
                        max_response_bytes=limits.max_response_bytes,
                    ),
                )
            except (UpstreamTimeoutError, UpstreamUnreachableError):
                if not await self._may_retry(None, deadline):
                    raise
                continue
            self.status = answer.status
            if 200 <= answer.status < 300:
                return answer
            if answer.status in _RETRY_STATUSES and await self._may_retry(
                answer.retry_after, deadline
            ):
                continue
            raise self._status_failure(answer.status)

    async def _may_retry(self, retry_after: str | None, deadline: float) -> bool:
        """Wait before the next attempt and say True, or False when none is allowed."""
        limits = self.spec.http.limits
        if self.attempts > self.spec.retries:
            return False
        wait = _retry_after_seconds(retry_after)
        if wait is None:
            wait = limits.backoff * (2 ** (self.attempts - 1)) * (0.5 + random.random() / 2)  # noqa: S311 - jitter
        elif wait > limits.max_retry_after:
            return False
        if time.perf_counter() + wait >= deadline:
            return False
        await asyncio.sleep(wait)
        return True

    def _status_failure(self, status: int) -> UpstreamError:
        if status in (401, 403):
            message = (
                f"{self.spec.name}: the upstream refused the customer's key (HTTP {status}); "
                "store a valid one with `tenantgate secrets set`"
            )
        elif status == 429:
            message = f"{self.spec.name}: the upstream is rate limiting (HTTP 429); retry later"
        elif status < 500:
            message = f"{self.spec.name}: the upstream refused the request (HTTP {status})"
        else:
            message = f"{self.spec.name}: the upstream failed (HTTP {status}); retry later"
        return UpstreamStatusError(message, status)

    def failure(self, cls: type[E.MediatorError], message: str) -> E.HttpToolFailed:
        status = self.status
        if cls is E.UpstreamFailed and status is not None:
            cls = E.UpstreamRejected if status < 500 else E.UpstreamUnavailable
        elif not issubclass(cls, E.HttpToolFailed):
            cls = E.UpstreamUnavailable
        if self.secret is not None:
            message = str(scrub(message, self.secret))
        assert issubclass(cls, E.HttpToolFailed)
        latency = (time.perf_counter() - self.started) * 1000
        logger.warning(
            "http tool %s failed: %s (HTTP %s, %d attempts)",
            self.spec.name, cls.__name__, status, self.attempts,
        )  # fmt: skip
        return cls(message, status=status, attempts=self.attempts, latency_ms=latency)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date; None when absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _pick(document: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(document, dict):
            document = document.get(token)
        elif isinstance(document, list) and token.isdigit() and int(token) < len(document):
            document = document[int(token)]
        else:
            return None
    return document


def _project(spec: HttpToolSpec, document: dict[str, Any]) -> list[dict[str, Any]]:
    """The declared fields of the answer (or of each item), scalars only; nothing else."""
    if spec.http.items is not None:
        items = _pick(document, pointer_tokens(spec.http.items))
        if not isinstance(items, list):
            raise UpstreamProtocolError(
                f"{spec.name}: the answer has no list at {spec.http.items!r}"
            )
    else:
        items = [document]
    rows = []
    for item in items:
        row = {}
        for f in spec.http.fields:
            value = _pick(item, f.path)
            row[f.name] = value if isinstance(value, str | int | float | bool) else None
        rows.append(row)
    return rows


def _shape(
    spec: HttpToolSpec, rows: list[dict[str, Any]], policy: DataPolicy, scopes: Iterable[str]
) -> dict[str, Any]:
    """The SQL tools' shaping (mediator/shaping.py), with the classes the tool declares."""
    columns = {f"http.{spec.name}.{f.name}": f.data_class for f in spec.http.fields}
    shaped = shape_rows(
        rows,
        column_of=lambda name: f"http.{spec.name}.{name}",
        policy=DataPolicy(columns=columns, scopes=policy.scopes),
        ceiling=policy.ceiling(scopes),
        max_rows=spec.max_rows,
        max_bytes=spec.max_bytes,
    )
    out: dict[str, Any]
    if spec.returns == "one":
        if not shaped.rows:  # one object past max_bytes: an error, never a silent {}
            raise UpstreamTooLargeError(
                f"{spec.name}: the answer is larger than the tool's {spec.max_bytes}-byte limit"
            )
        out = dict(shaped.rows[0])
    else:
        out = {"items": shaped.rows, "truncated": shaped.truncated}
    if shaped.masked:
        out["_masked"] = list(shaped.masked)
    return out
