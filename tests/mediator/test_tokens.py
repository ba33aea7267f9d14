"""Every token defect is refused; only a correct token yields claims."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tenantgate.mediator.errors import TokenError
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner, TokenVerifier

ISS, AUD = "https://backend.test", "http://127.0.0.1:8765/mcp"


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def pub_file(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    p = tmp_path / "pub.pem"
    p.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return p


@pytest.fixture
def verifier(pub_file: Path) -> TokenVerifier:
    return TokenVerifier(
        Settings(
            issuer=ISS,
            audience=AUD,
            jwt_public_key_file=pub_file,
            max_token_lifetime_seconds=3600,
            leeway_seconds=5,
        )
    )


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    c: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "j1",
        "tg_org": str(uuid.uuid4()),
        "tg_conn": str(uuid.uuid4()),
        "tg_cust": str(uuid.uuid4()),
        "tg_sid": str(uuid.uuid4()),
        "tg_secret": "s" * 43,
        "scope": "read:tickets",
    }
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def es(key: ec.EllipticCurvePrivateKey, payload: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm="ES256", headers=headers or None)


def test_valid_es256_token_yields_claims(
    verifier: TokenVerifier, key: ec.EllipticCurvePrivateKey
) -> None:
    c = verifier.verify(es(key, claims()))
    assert c.scopes == frozenset({"read:tickets"})
    assert "s" * 43 not in repr(c)


@pytest.mark.parametrize(
    "defect",
    [
        {"exp": int(time.time()) - 60},
        {"nbf": int(time.time()) + 600, "exp": int(time.time()) + 900},
        {"iat": int(time.time()) + 600, "exp": int(time.time()) + 900},
        {"aud": "http://other-server.example/mcp"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) + 7200},
        {"tg_org": "not-a-uuid"},
        {"tg_secret": "short"},
    ],
    ids=[
        "expired",
        "not_yet_valid",
        "issued_in_future",
        "wrong_audience",
        "wrong_issuer",
        "over_long_lifetime",
        "malformed_org",
        "short_secret",
    ],
)
def test_token_with_defect_is_refused(
    verifier: TokenVerifier, key: ec.EllipticCurvePrivateKey, defect: dict[str, Any]
) -> None:
    with pytest.raises(TokenError):
        verifier.verify(es(key, claims(**defect)))


@pytest.mark.parametrize(
    "missing",
    [
        "iss",
        "aud",
        "sub",
        "iat",
        "nbf",
        "exp",
        "jti",
        "tg_org",
        "tg_conn",
        "tg_cust",
        "tg_sid",
        "tg_secret",
        "scope",
    ],
)
def test_token_missing_a_claim_is_refused(
    verifier: TokenVerifier, key: ec.EllipticCurvePrivateKey, missing: str
) -> None:
    payload = claims()
    del payload[missing]
    with pytest.raises(TokenError):
        verifier.verify(es(key, payload))


def test_token_with_bad_signature_is_refused(verifier: TokenVerifier) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TokenError):
        verifier.verify(es(other, claims()))


def test_tampered_payload_is_refused(
    verifier: TokenVerifier, key: ec.EllipticCurvePrivateKey
) -> None:
    head, _, sig = es(key, claims()).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(scope="write:refunds")).encode())
    with pytest.raises(TokenError):
        verifier.verify(f"{head}.{forged.decode().rstrip('=')}.{sig}")


def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(), None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        verifier.verify(token)


def test_hs256_signed_with_the_public_key_is_refused(
    verifier: TokenVerifier, pub_file: Path
) -> None:
    # algorithm confusion: the attacker knows the public key and signs HS256 with its bytes
    pem = pub_file.read_bytes()
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    import hashlib
    import hmac

    sig = hmac.new(pem, header + b"." + body, hashlib.sha256).digest()
    token = b".".join([header, body, base64.urlsafe_b64encode(sig).rstrip(b"=")]).decode()
    with pytest.raises(TokenError):
        verifier.verify(token)


def test_eddsa_token_verifies_from_a_jwks_document(tmp_path: Path) -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(ed.public_key()))
    jwk["kid"] = "k1"
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    v = TokenVerifier(Settings(issuer=ISS, audience=AUD, jwks_file=jwks))
    signer = TokenSigner(issuer=ISS, audience=AUD, private_key=ed, algorithm="EdDSA", kid="k1")
    token = signer.mint(
        operator_id=str(uuid.uuid4()),
        org_id=str(uuid.uuid4()),
        connector_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        session_id=str(uuid.uuid4()),
        session_secret="x" * 43,
        scopes=["read:tickets"],
        lifetime_seconds=300,
    )
    assert v.verify(token).scopes == {"read:tickets"}


def test_hs256_dev_mode_is_explicit_and_loud(caplog: pytest.LogCaptureFixture) -> None:
    secret = "d" * 40
    v = TokenVerifier(Settings(issuer=ISS, audience=AUD, dev_hs256_secret=secret))
    assert "DEVELOPMENT MODE" in caplog.text
    assert v.verify(jwt.encode(claims(), secret, algorithm="HS256")).org_id


def test_production_mode_refuses_hs256(verifier: TokenVerifier) -> None:
    with pytest.raises(TokenError):
        verifier.verify(jwt.encode(claims(), "d" * 40, algorithm="HS256"))


def test_no_key_configured_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="no verification key"):
        TokenVerifier(Settings(issuer=ISS, audience=AUD))
