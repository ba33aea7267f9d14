"""A pinned HTTPS call connects to the checked address yet verifies the certificate for the name
(SNI and Host carry the name); a certificate for another name fails before the key is sent."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tenantgate.mediator import errors as E
from tenantgate.mediator.fake_upstream import FakeBilling
from tenantgate.mediator.upstream import EgressPolicy, UpstreamClient
from tests.credentials.http_world import ACCOUNTS, ACME_KEY, TOOLS, call

NAME = "billing.test"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("tenantgate test CA"))
        .issuer_name(_name("tenantgate test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def server_context(tmp_path: Path, dns_name: str) -> tuple[ssl.SSLContext, bytes]:
    """A server context presenting a certificate for ``dns_name``, and the CA that signed it."""
    ca_key, ca = make_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{dns_name}.pem", tmp_path / f"{dns_name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, ca.public_bytes(serialization.Encoding.PEM)


async def to_loopback(host: str, port: int) -> Sequence[str]:
    return ["127.0.0.1"]


def call_over_tls(fake: FakeBilling, ca_pem: bytes) -> object:
    client_context = ssl.create_default_context(cadata=ca_pem.decode())
    egress = EgressPolicy.parse(f"https://{NAME}:{fake.port}", "127.0.0.1/32")

    async def go() -> object:
        async with UpstreamClient(egress, ssl_context=client_context, resolver=to_loopback) as c:
            return await call(
                fake, TOOLS["get_billing_status"], client=c, base_url=f"https://{NAME}:{fake.port}"
            )

    return asyncio.run(go())


def test_a_pinned_https_call_verifies_the_certificate_for_the_name(tmp_path: Path) -> None:
    context, ca_pem = server_context(tmp_path, NAME)
    with FakeBilling(ACCOUNTS, tls=context) as fake:
        outcome = call_over_tls(fake, ca_pem)
        (received,) = fake.received
    assert getattr(outcome, "result")["customer"] == "Acme"  # noqa: B009
    assert received.headers["host"] == f"{NAME}:{fake.port}"
    assert ipaddress.ip_address(fake.base_url.split("//")[1].split(":")[0]).is_loopback


def test_a_certificate_for_another_name_fails_before_the_key_is_sent(tmp_path: Path) -> None:
    context, ca_pem = server_context(tmp_path, "someone-else.test")
    with FakeBilling(ACCOUNTS, tls=context) as fake:
        with pytest.raises(E.UpstreamUnavailable, match="could not reach") as caught:
            call_over_tls(fake, ca_pem)
        assert fake.received == []
    assert ACME_KEY.reveal() not in str(caught.value)
