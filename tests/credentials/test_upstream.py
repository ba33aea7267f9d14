"""mediator.upstream against the fake billing API: each customer's own key, nothing leaks back."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from tenantgate.mediator.fake_upstream import FakeBilling
from tenantgate.mediator.keys import Secret
from tenantgate.mediator.upstream import (
    REDACTED,
    ConnectorTarget,
    EgressDeniedError,
    EgressPolicy,
    UpstreamClient,
    UpstreamError,
    UpstreamLimits,
    call_upstream,
)

ACME_KEY = Secret("sk_live_acme_0123456789abcdef0123456789")
BETA_KEY = Secret("sk_live_beta_fedcba9876543210fedcba9876")
ACCOUNTS = {
    ACME_KEY.reveal(): {"customer": "Acme", "plan": "enterprise", "balance_cents": 120_000},
    BETA_KEY.reveal(): {"customer": "Beta", "plan": "starter", "balance_cents": 0},
}


@pytest.fixture
def fake() -> Iterator[FakeBilling]:
    with FakeBilling(ACCOUNTS) as server:
        yield server


def policy_for(fake: FakeBilling) -> EgressPolicy:
    return EgressPolicy.parse(f"http://127.0.0.1:{fake.port}")


def call(fake: FakeBilling, key: Secret, path: str, **kwargs: Any) -> dict[str, Any]:
    target = ConnectorTarget(fake.base_url, kwargs.pop("auth_header", "Authorization"))
    egress = kwargs.pop("egress", policy_for(fake))
    return asyncio.run(call_upstream(target, key, path, egress=egress, **kwargs))


def test_each_customer_gets_its_own_data_with_its_own_key(fake: FakeBilling) -> None:
    assert call(fake, ACME_KEY, "/v1/billing/status")["customer"] == "Acme"
    assert call(fake, BETA_KEY, "/v1/billing/status")["customer"] == "Beta"
    acme_call, beta_call = fake.received
    assert acme_call.headers["authorization"] == f"Bearer {ACME_KEY.reveal()}"
    assert BETA_KEY.reveal() not in str(acme_call)
    assert ACME_KEY.reveal() not in str(beta_call)


def test_the_key_goes_into_the_connectors_header(fake: FakeBilling) -> None:
    with FakeBilling(ACCOUNTS, auth_header="X-Api-Key") as custom:
        result = call(custom, BETA_KEY, "/v1/billing/status", auth_header="X-Api-Key")
        assert result["customer"] == "Beta"
        (received,) = custom.received
        assert received.headers["x-api-key"] == BETA_KEY.reveal()
        assert "authorization" not in received.headers


def test_params_reach_the_upstream(fake: FakeBilling) -> None:
    call(fake, ACME_KEY, "/v1/billing/status", params={"month": "2026-11", "limit": 5})
    assert fake.received[0].query == {"month": ["2026-11"], "limit": ["5"]}


def test_egress_to_a_host_not_on_the_allowlist_is_refused_before_connecting(
    fake: FakeBilling,
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        target = ConnectorTarget(f"http://127.0.0.1:{port}")
        for egress in (policy_for(fake), EgressPolicy.parse(""), EgressPolicy.from_env({})):
            with pytest.raises(EgressDeniedError, match="not allowed"):
                asyncio.run(call_upstream(target, ACME_KEY, "/v1/billing/status", egress=egress))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected


def test_egress_rules_compare_scheme_host_and_port(fake: FakeBilling) -> None:
    egress = EgressPolicy.parse(f"https://127.0.0.1:{fake.port}, http://localhost:{fake.port}")
    with pytest.raises(EgressDeniedError):
        call(fake, ACME_KEY, "/v1/billing/status", egress=egress)
    assert fake.received == []


def test_paths_that_could_leave_the_base_url_are_refused(fake: FakeBilling) -> None:
    for path in (
        "//evil.example/x",
        "http://evil.example/",
        "/../admin",
        "/v1/%2e%2e/x",
        "v1/no-slash",
        "/v1/x?inject=1",
        "/v1/@evil",
        "/v1\\x",
    ):
        with pytest.raises(UpstreamError, match="plain absolute path"):
            call(fake, ACME_KEY, path)
    assert fake.received == []


def test_an_echoed_key_is_scrubbed_from_the_result(fake: FakeBilling) -> None:
    result = call(fake, ACME_KEY, "/v1/echo")
    assert ACME_KEY.reveal() not in repr(result)
    assert result["you_sent"] == f"Bearer {REDACTED}"


def test_redirects_are_refused(fake: FakeBilling) -> None:
    with pytest.raises(UpstreamError, match="redirect"):
        call(fake, ACME_KEY, "/v1/redirect")
    assert [r.path for r in fake.received] == ["/v1/redirect"]


def test_answers_over_the_size_cap_are_refused(fake: FakeBilling) -> None:
    with pytest.raises(UpstreamError, match="larger than the 65536-byte limit"):
        call(fake, ACME_KEY, "/v1/large", limits=UpstreamLimits(max_response_bytes=65536))


def test_a_slow_upstream_times_out(fake: FakeBilling) -> None:
    limits = UpstreamLimits(read_timeout=0.3, total_timeout=0.5)
    with pytest.raises(UpstreamError, match="did not answer"):
        call(fake, ACME_KEY, "/v1/slow", limits=limits)


def test_a_refused_key_says_what_to_do_without_the_key(fake: FakeBilling) -> None:
    wrong = Secret("sk_live_wrong_000000000000000000000000")
    with pytest.raises(UpstreamError, match="HTTP 401") as caught:
        call(fake, wrong, "/v1/billing/status")
    assert wrong.reveal() not in str(caught.value)
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


def test_an_unreachable_upstream_is_a_clean_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connection refused
        target = ConnectorTarget(f"http://127.0.0.1:{port}")
        egress = EgressPolicy.parse(f"http://127.0.0.1:{port}")
        with pytest.raises(UpstreamError, match="could not reach") as caught:
            asyncio.run(call_upstream(target, ACME_KEY, "/v1/billing/status", egress=egress))
    assert ACME_KEY.reveal() not in str(caught.value)


def test_tls_verification_cannot_be_switched_off() -> None:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with pytest.raises(UpstreamError, match="must verify"):
        UpstreamClient(EgressPolicy.parse(""), ssl_context=unverified)


def test_connector_targets_are_validated() -> None:
    for base_url in ("ftp://x.example", "https://user:pw@x.example", "https://x.example/?a=1"):
        with pytest.raises(UpstreamError):
            ConnectorTarget(base_url)
    for header in ("Host", "Cookie", "Content-Length"):
        with pytest.raises(UpstreamError):
            ConnectorTarget("https://x.example", header)


def test_egress_entries_are_validated() -> None:
    for spec in ("billing.example", "ftp://x.example", "https://x.example/path"):
        with pytest.raises(ValueError, match="egress entry"):
            EgressPolicy.parse(spec)
    assert str(next(iter(EgressPolicy.parse("https://B.example").rules))) == "https://b.example:443"


def test_one_client_serves_many_calls(fake: FakeBilling) -> None:
    async def both() -> list[dict[str, Any]]:
        async with UpstreamClient(policy_for(fake)) as client:
            target = ConnectorTarget(fake.base_url)
            return list(
                await asyncio.gather(
                    client.call(target, ACME_KEY, "/v1/billing/status"),
                    client.call(target, BETA_KEY, "/v1/billing/status"),
                )
            )

    acme, beta = asyncio.run(both())
    assert (acme["customer"], beta["customer"]) == ("Acme", "Beta")
    for request in fake.received:
        other = BETA_KEY if ACME_KEY.reveal() in request.headers["authorization"] else ACME_KEY
        assert other.reveal() not in str(request)
