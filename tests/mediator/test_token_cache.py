"""The verified-token cache (Mediator.authenticate): a signature is checked once per token, and
nothing else is remembered: expiry is checked on every call, and any other token string, a
tampered copy included, is verified from scratch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tenantgate.mediator import service
from tenantgate.mediator.errors import TokenError
from tenantgate.mediator.service import Mediator
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenVerifier
from tests.mediator.test_tokens import claims, es, key, pub_file  # noqa: F401 (fixtures)

ISS, AUD = "https://backend.test", "http://127.0.0.1:8765/mcp"


class CountingVerifier(TokenVerifier):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.verified = 0

    def verify(self, token: str) -> Any:
        self.verified += 1
        return super().verify(token)


@pytest.fixture
def mediator(pub_file: Path) -> Mediator:  # noqa: F811
    settings = Settings(issuer=ISS, audience=AUD, jwt_public_key_file=pub_file, leeway_seconds=0)
    return Mediator(settings, CountingVerifier(settings), None, None)  # type: ignore[arg-type]


def test_a_token_signature_is_verified_once_then_served_from_the_cache(
    mediator: Mediator,
    key: ec.EllipticCurvePrivateKey,  # noqa: F811
) -> None:
    token = es(key, claims())
    first = mediator.authenticate(token)
    assert mediator.authenticate(token) == first
    assert mediator.verifier.verified == 1  # type: ignore[attr-defined]


def test_a_cached_token_is_refused_once_it_expires(
    mediator: Mediator,
    key: ec.EllipticCurvePrivateKey,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = int(time.time())
    token = es(key, claims(iat=now - 10, nbf=now - 10, exp=now + 2))
    mediator.authenticate(token)
    monkeypatch.setattr(service.time, "time", lambda: now + 3.0)
    with pytest.raises(TokenError):
        mediator.authenticate(token)
    # refused from the cache, by its expiry alone: no new verification
    assert mediator.verifier.verified == 1  # type: ignore[attr-defined]


def test_a_tampered_copy_of_a_cached_token_is_verified_and_refused(
    mediator: Mediator,
    key: ec.EllipticCurvePrivateKey,  # noqa: F811
) -> None:
    token = es(key, claims())
    mediator.authenticate(token)
    head, payload, signature = token.split(".")
    other = es(key, claims(tg_cust="00000000-0000-4000-8000-000000000001")).split(".")[1]
    for forged in (
        f"{head}.{other}.{signature}",  # another tenant's claims under the cached signature
        f"{head}.{payload}.{signature[:-2]}AA",  # a different signature
        token + " ",
    ):
        with pytest.raises(TokenError):
            mediator.authenticate(forged)
    assert mediator.verifier.verified == 4  # type: ignore[attr-defined]
