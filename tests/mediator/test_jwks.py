"""JWKS from a URL: cached, refreshed on an unknown kid (rate limited) and when old."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tenantgate.mediator.errors import TokenError
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner, TokenVerifier

ISS, AUD = "https://idp.test", "http://127.0.0.1:8765/mcp"


class Provider:
    """An identity provider's JWKS endpoint on loopback; counts how often it is fetched."""

    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.fetches = 0
        self.failing = False
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                if provider.failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"keys": provider.jwks()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def jwks(self) -> list[dict[str, Any]]:
        out = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
            jwk.update(kid=kid, use="sig", alg="ES256")
            out.append(jwk)
        return out

    def rotate(self, kid: str) -> ec.EllipticCurvePrivateKey:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        return self.keys[kid]


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    p.rotate("k1")
    yield p
    p.server.shutdown()
    p.server.server_close()


def token(key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    signer = TokenSigner(issuer=ISS, audience=AUD, private_key=key, algorithm="ES256", kid=kid)
    return signer.mint(
        operator_id=str(uuid.uuid4()),
        org_id=str(uuid.uuid4()),
        connector_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        session_id=str(uuid.uuid4()),
        session_secret="s" * 43,
        scopes=["read:tickets"],
        lifetime_seconds=300,
    )


def verifier(provider: Provider, **kw: Any) -> TokenVerifier:
    return TokenVerifier(Settings(issuer=ISS, audience=AUD, jwks_url=provider.url, **kw))


def test_a_key_rotated_at_the_provider_verifies_without_a_restart(provider: Provider) -> None:
    v = verifier(provider, jwks_min_refetch_seconds=1)
    assert provider.fetches == 1
    v.verify(token(provider.keys["k1"], "k1"))
    v.verify(token(provider.keys["k1"], "k1"))
    assert provider.fetches == 1  # cached
    new = provider.rotate("k2")
    v._jwks_tried_at -= 2  # the min-refetch interval has passed
    assert v.verify(token(new, "k2")).scopes == {"read:tickets"}
    assert provider.fetches == 2


def test_unknown_kids_refetch_at_most_once_per_interval(provider: Provider) -> None:
    v = verifier(provider, jwks_min_refetch_seconds=60)
    stranger = ec.generate_private_key(ec.SECP256R1())
    for i in range(20):
        with pytest.raises(TokenError):
            v.verify(token(stranger, f"made-up-{i}"))
    assert provider.fetches == 1  # the start's fetch; the refetch waits for the interval
    v._jwks_tried_at -= 61
    with pytest.raises(TokenError):
        v.verify(token(stranger, "made-up-again"))
    assert provider.fetches == 2


def test_a_key_removed_at_the_provider_stops_verifying_once_the_cache_is_old(
    provider: Provider,
) -> None:
    v = verifier(provider, jwks_max_age_seconds=60)
    old = provider.keys["k1"]
    v.verify(token(old, "k1"))
    del provider.keys["k1"]
    provider.rotate("k2")
    v._jwks_fetched_at -= 61
    v._jwks_tried_at -= 61
    with pytest.raises(TokenError):
        v.verify(token(old, "k1"))


def test_a_provider_outage_keeps_the_cached_keys(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    v = verifier(provider, jwks_max_age_seconds=60)
    provider.failing = True
    v._jwks_fetched_at -= 61
    v._jwks_tried_at -= 61
    assert v.verify(token(provider.keys["k1"], "k1"))
    assert provider.fetches == 2
    assert "jwks refresh failed, keeping cached keys" in caplog.text


def test_an_unreachable_jwks_url_at_start_is_a_clear_error(provider: Provider) -> None:
    provider.failing = True
    with pytest.raises(Exception, match="503"):
        verifier(provider)
