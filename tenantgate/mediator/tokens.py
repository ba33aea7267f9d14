"""Bearer tokens: verify every claim the gate relies on, and mint them for the session manager."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tenantgate.mediator.errors import TokenError
from tenantgate.mediator.settings import Settings

logger = logging.getLogger("tenantgate.tokens")

ASYMMETRIC = ("ES256", "EdDSA")
REQUIRED = (
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
)
UUID_CLAIMS = ("sub", "tg_org", "tg_conn", "tg_cust", "tg_sid")


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says; the only source of identity and tenant."""

    operator_id: str
    org_id: str
    connector_id: str
    customer_id: str
    session_id: str
    session_secret: str
    scopes: frozenset[str]
    jti: str
    expires_at: int

    def __repr__(self) -> str:  # never print the secret
        return (
            f"Claims(org={self.org_id}, customer={self.customer_id}, "
            f"session={self.session_id}, scopes={sorted(self.scopes)})"
        )


class TokenVerifier:
    """Checks signature, algorithm, issuer, audience, time claims and lifetime."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.issuer
        self.audience = settings.audience
        self.leeway = settings.leeway_seconds
        self.max_lifetime = settings.max_token_lifetime_seconds
        self._keys: dict[str | None, Any] = {}
        self._hs_secret: bytes | None = None
        self._jwks_url = settings.jwks_url
        self._jwks_max_age = settings.jwks_max_age_seconds
        self._jwks_min_refetch = settings.jwks_min_refetch_seconds
        self._jwks_keys: dict[str | None, Any] = {}
        self._jwks_fetched_at = 0.0  # last success
        self._jwks_tried_at = 0.0  # last attempt, success or not
        algs = set(settings.jwt_algorithms)
        if settings.dev_hs256_secret is not None:
            secret = settings.dev_hs256_secret.get_secret_value().encode()
            if len(secret) < 32:
                raise ValueError("dev HS256 secret must be at least 32 bytes")
            self._hs_secret = secret
            logger.warning(
                "DEVELOPMENT MODE: HS256 shared-secret tokens accepted; "
                "never run this in production"
            )
            self.algorithms = ["HS256"]
            return
        self.algorithms = sorted(algs & set(ASYMMETRIC))
        if not self.algorithms:
            raise ValueError("no asymmetric algorithm configured (ES256 or EdDSA)")
        if settings.jwt_public_key_file is not None:
            self._keys[None] = _load_public_pem(settings.jwt_public_key_file.read_bytes())
        if settings.jwks_file is not None:
            self._load_jwks(json.loads(settings.jwks_file.read_text()))
        if self._jwks_url is not None:
            self._jwks_keys = self._fetch_jwks()  # at start a failure is fatal: raises
        if not self._keys and not self._jwks_keys:
            raise ValueError("no verification key: set TENANTGATE_JWT_PUBLIC_KEY_FILE or JWKS")

    def _load_jwks(self, doc: dict[str, Any]) -> None:
        self._keys.update(_jwks_keys(doc))

    def _fetch_jwks(self) -> dict[str | None, Any]:
        """GET the JWKS now (short timeout, no redirects); its usable keys by kid."""
        import httpx

        self._jwks_tried_at = time.monotonic()
        assert self._jwks_url is not None
        resp = httpx.get(self._jwks_url, timeout=5, follow_redirects=False)
        resp.raise_for_status()
        keys = _jwks_keys(resp.json())
        self._jwks_fetched_at = time.monotonic()
        return keys

    def _refresh_jwks(self, kid: str | None) -> None:
        """Refetch when the cached set is older than the max age, or on an unknown kid at most
        once per min-refetch interval (a stream of made-up kids cannot hammer the provider).
        A failed refetch keeps the cached keys and logs one line."""
        if self._jwks_url is None:
            return
        now = time.monotonic()
        stale = now - self._jwks_fetched_at >= self._jwks_max_age
        unknown = kid not in self._jwks_keys and kid not in self._keys
        if not (stale or unknown) or now - self._jwks_tried_at < self._jwks_min_refetch:
            return
        try:
            self._jwks_keys = self._fetch_jwks()
            logger.info("jwks refreshed: %d keys", len(self._jwks_keys))
        except Exception as exc:
            logger.warning("jwks refresh failed, keeping cached keys: %s", type(exc).__name__)

    def _key_for(self, header: dict[str, Any]) -> Any:
        if self._hs_secret is not None:
            return self._hs_secret
        kid = header.get("kid")
        self._refresh_jwks(kid)
        keys = {**self._keys, **self._jwks_keys}
        key = keys.get(kid) or (keys.get(None) if kid is None or len(keys) == 1 else None)
        if key is None:
            raise TokenError()
        return key

    def verify(self, token: str) -> Claims:
        """Verify `token` now; raise TokenError (message never says why) on any defect."""
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg not in self.algorithms:  # refuses "none" and HS/ES confusion
                raise TokenError()
            key = self._key_for(header)
            if self._hs_secret is None and not isinstance(
                key, (EllipticCurvePublicKey, Ed25519PublicKey)
            ):
                raise TokenError()
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED), "strict_aud": True},
            )
        except TokenError:
            raise
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            logger.info("token refused: %s", type(exc).__name__)
            raise TokenError() from None
        return self._claims(payload)

    def _claims(self, p: dict[str, Any]) -> Claims:
        now = time.time()
        iat, nbf, exp = p["iat"], p["nbf"], p["exp"]
        if not all(isinstance(v, int) for v in (iat, nbf, exp)):
            raise TokenError()
        if (
            iat > now + self.leeway
            or exp - iat > self.max_lifetime
            or exp - nbf > self.max_lifetime
        ):
            logger.info("token refused: lifetime")
            raise TokenError()
        try:
            ids = {k: str(uuid.UUID(str(p[k]))) for k in UUID_CLAIMS}
        except ValueError:
            raise TokenError() from None
        secret, scope, jti = p["tg_secret"], p["scope"], p["jti"]
        if not (isinstance(secret, str) and 16 <= len(secret) <= 256):
            raise TokenError()
        if not (isinstance(scope, str) and len(scope) <= 2048 and isinstance(jti, str)):
            raise TokenError()
        return Claims(
            operator_id=ids["sub"],
            org_id=ids["tg_org"],
            connector_id=ids["tg_conn"],
            customer_id=ids["tg_cust"],
            session_id=ids["tg_sid"],
            session_secret=secret,
            scopes=frozenset(scope.split()),
            jti=jti,
            expires_at=exp,
        )


def _jwks_keys(doc: dict[str, Any]) -> dict[str | None, Any]:
    keys: dict[str | None, Any] = {}
    for jwk in jwt.PyJWKSet.from_dict(doc).keys:
        if jwk.key_type == "oct":
            continue  # a symmetric key in a JWKS would re-open HS/ES confusion
        keys[jwk.key_id] = jwk.key
    return keys


def _load_public_pem(pem: bytes) -> Any:
    key = load_pem_public_key(pem)
    if not isinstance(key, (EllipticCurvePublicKey, Ed25519PublicKey)):
        raise ValueError("public key must be EC P-256 or Ed25519")
    return key


class TokenSigner:
    """Mints tokens for the session manager (private key never leaves this object)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        private_key: Any,
        algorithm: str,
        kid: str | None = None,
    ) -> None:
        if algorithm not in (*ASYMMETRIC, "HS256"):
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        self.issuer, self.audience, self.algorithm, self.kid = issuer, audience, algorithm, kid
        self._key = private_key

    def public_key(self) -> Any:
        """The verification half (None for the development HS256 secret)."""
        return self._key.public_key() if hasattr(self._key, "public_key") else None

    @classmethod
    def from_pem_file(
        cls,
        path: Path,
        *,
        issuer: str,
        audience: str,
        algorithm: str = "ES256",
        kid: str | None = None,
    ) -> TokenSigner:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(path.read_bytes(), password=None)
        return cls(issuer=issuer, audience=audience, private_key=key, algorithm=algorithm, kid=kid)

    def mint(
        self,
        *,
        operator_id: str,
        org_id: str,
        connector_id: str,
        customer_id: str,
        session_id: str,
        session_secret: str,
        scopes: list[str] | tuple[str, ...],
        lifetime_seconds: int,
        now: int | None = None,
        **extra: Any,
    ) -> str:
        t = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": operator_id,
            "iat": t,
            "nbf": t,
            "exp": t + lifetime_seconds,
            "jti": str(uuid.uuid4()),
            "tg_org": org_id,
            "tg_conn": connector_id,
            "tg_cust": customer_id,
            "tg_sid": session_id,
            "tg_secret": session_secret,
            "scope": " ".join(scopes),
        }
        claims.update(extra)
        headers = {"kid": self.kid} if self.kid else None
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)
