"""Egress: refused before any connection or decryption, DNS pinned once per call, special
addresses refused unless the mediator's allowlist names them. Real sockets on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator, Sequence

import pytest

from tenantgate.mediator import errors as E
from tenantgate.mediator.fake_upstream import FakeBilling
from tenantgate.mediator.keys import Secret
from tenantgate.mediator.pinning import is_special
from tenantgate.mediator.upstream import EgressDeniedError, EgressPolicy, UpstreamClient
from tests.credentials.http_world import ACCOUNTS, ACME_KEY, TOOLS, call

STATUS = TOOLS["get_billing_status"]
NAME = "billing.test"  # .test never resolves in real DNS: only our resolver can answer it


@pytest.fixture
def fake() -> Iterator[FakeBilling]:
    with FakeBilling(ACCOUNTS) as server:
        yield server


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.2: anything that connects to it is caught by accept()."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def nobody_connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


class Resolver:
    """A resolver that answers from a script, one answer list per lookup, counting lookups."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        return self.answers.pop(0)


class KeySpy:
    """A key source that records whether anything was decrypted."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Secret:
        self.calls += 1
        return ACME_KEY


def pinned_call(
    fake: FakeBilling, egress: EgressPolicy, resolver: Resolver, key: KeySpy, port: int
) -> object:
    async def go() -> object:
        async with UpstreamClient(egress, resolver=resolver) as client:
            return await call(
                fake, STATUS, key=key, client=client, base_url=f"http://{NAME}:{port}"
            )

    return asyncio.run(go())


def test_a_base_url_off_the_allowlist_fails_before_connecting_or_decrypting(
    fake: FakeBilling, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    key = KeySpy()
    for base_url in (f"http://127.0.0.2:{port}", f"https://127.0.0.1:{fake.port}"):
        with pytest.raises(E.EgressRefused, match="TENANTGATE_EGRESS_ALLOW") as caught:
            asyncio.run(call(fake, STATUS, key=key, base_url=base_url))
        assert caught.value.attempts == 0
    assert key.calls == 0
    assert nobody_connected(listener)
    assert fake.received == []


def test_a_name_resolving_to_loopback_is_refused_unless_allowed_explicitly(
    fake: FakeBilling, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    key = KeySpy()
    egress = EgressPolicy.parse(f"http://{NAME}:{port}")
    with pytest.raises(E.EgressRefused, match="special address") as caught:
        pinned_call(fake, egress, Resolver(["127.0.0.2"]), key, port)
    assert "TENANTGATE_EGRESS_ALLOW_ADDRESSES" in str(caught.value)
    assert key.calls == 0
    assert nobody_connected(listener)


@pytest.mark.parametrize(
    "answers",
    [["10.0.0.7"], ["169.254.169.254"], ["127.0.0.1", "10.0.0.7"], ["::ffff:127.0.0.1"]],
)
def test_any_special_answer_refuses_the_whole_name(fake: FakeBilling, answers: list[str]) -> None:
    key = KeySpy()
    egress = EgressPolicy.parse(f"http://{NAME}:{fake.port}", "127.0.0.1/32")
    with pytest.raises(E.EgressRefused):
        pinned_call(fake, egress, Resolver(answers), key, fake.port)
    assert key.calls == 0
    assert fake.received == []


def test_dns_is_resolved_once_and_the_checked_answer_is_what_is_connected_to(
    fake: FakeBilling, listener: socket.socket
) -> None:
    """A name answering 127.0.0.1 (allowed) then 127.0.0.2 (not): a rebinding attempt."""
    fake_port = fake.port
    with socket.socket() as rebound:
        rebound.bind(("127.0.0.2", fake_port))  # same port, the address DNS flips to
        rebound.listen(8)
        rebound.setblocking(False)
        egress = EgressPolicy.parse(f"http://{NAME}:{fake_port}", "127.0.0.1/32")
        resolver = Resolver(["127.0.0.1"], ["127.0.0.2"])
        key = KeySpy()

        outcome = pinned_call(fake, egress, resolver, key, fake_port)
        assert resolver.lookups == [NAME]  # one lookup for the call, none by the HTTP stack
        (received,) = fake.received
        assert received.headers["host"] == f"{NAME}:{fake_port}"  # the name travels in Host
        assert getattr(outcome, "result")["customer"] == "Acme"  # noqa: B009

        with pytest.raises(E.EgressRefused, match=r"127\.0\.0\.2"):
            pinned_call(fake, egress, resolver, key, fake_port)
        assert resolver.lookups == [NAME, NAME]
        assert nobody_connected(rebound)
        assert key.calls == 1  # decrypted for the allowed call only
    assert len(fake.received) == 1


def test_an_unresolvable_name_is_a_clear_error_before_decrypting(fake: FakeBilling) -> None:
    async def broken(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror("no such host")

    key = KeySpy()
    egress = EgressPolicy.parse(f"http://{NAME}:{fake.port}")

    async def go() -> None:
        async with UpstreamClient(egress, resolver=broken) as client:
            await call(fake, STATUS, key=key, client=client, base_url=f"http://{NAME}:{fake.port}")

    with pytest.raises(E.UpstreamUnavailable, match="could not resolve"):
        asyncio.run(go())
    assert key.calls == 0


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address to classify, not to bind
        "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1",
        "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::", "ff02::1",
    ],
)  # fmt: skip
def test_special_addresses_are_recognised(address: str) -> None:
    assert is_special(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "64:ff9b::808:808"])
def test_public_addresses_are_not_special(address: str) -> None:
    assert not is_special(ipaddress.ip_address(address))


def test_egress_addresses_are_validated() -> None:
    with pytest.raises(ValueError, match="egress address"):
        EgressPolicy.parse("https://x.example", "10.0.0.0/33")
    with pytest.raises(ValueError, match="egress address"):
        EgressPolicy.parse("https://x.example", "10.0.0.1/8")  # host bits set: ambiguous
    policy = EgressPolicy.from_env(
        {
            "TENANTGATE_EGRESS_ALLOW": "https://x.example",
            "TENANTGATE_EGRESS_ALLOW_ADDRESSES": "10.20.0.0/16, fd00::/8",
        }
    )
    assert len(policy.special_ok) == 2


def test_a_request_that_skips_pinning_is_refused_by_the_hook(fake: FakeBilling) -> None:
    """The pool's hook refuses a request whose host is still a name (never resolved by us)."""
    client = UpstreamClient(EgressPolicy.parse(f"http://{NAME}:{fake.port}"))

    async def go() -> None:
        try:
            http = client._client_for(next(iter(client._egress.rules)))
            await http.get(f"http://{NAME}:{fake.port}/v1/billing/status")
        finally:
            await client.aclose()

    with pytest.raises(EgressDeniedError, match="pinned address"):
        asyncio.run(go())
    assert fake.received == []


def test_an_ip_literal_entry_allows_exactly_its_own_special_address() -> None:
    from tenantgate.mediator.egress import EgressRule

    policy = EgressPolicy.parse("http://[0:0::1]:8080,http://127.0.0.1:8080")
    v6 = EgressRule("http", "0:0::1", 8080)
    policy.check_address(v6, ipaddress.ip_address("::1"))  # the same address, spelled otherwise
    with pytest.raises(EgressDeniedError):
        policy.check_address(v6, ipaddress.ip_address("127.0.0.1"))
    with pytest.raises(EgressDeniedError):
        policy.check_address(EgressRule("http", "127.0.0.1", 8080), ipaddress.ip_address("::1"))
