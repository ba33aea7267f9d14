"""The authorization server as an OpenID Connect client of the company identity provider.

Authorization code + PKCE (S256) against the IdP; the ID token is verified with the IdP's JWKS,
cached and fetched again when a token names a key id the cache does not know (key rotation).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

logger = logging.getLogger("tenantgate.authz.oidc")

ALGORITHMS = ["ES256", "RS256", "EdDSA", "PS256"]
JWKS_MIN_REFETCH_SECONDS = 10


class IdTokenError(Exception):
    """The ID token was refused (the message never includes the token)."""


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str
    email: str


class OidcClient:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        http: httpx.AsyncClient,
    ) -> None:
        self.issuer, self.client_id, self._secret = issuer.rstrip("/"), client_id, client_secret
        self.http = http
        self._config: dict[str, Any] | None = None
        self._keys: dict[str, Any] = {}
        self._keys_fetched = 0.0
        self.jwks_fetches = 0

    async def config(self) -> dict[str, Any]:
        if self._config is None:
            resp = await self.http.get(f"{self.issuer}/.well-known/openid-configuration")
            resp.raise_for_status()
            doc = resp.json()
            if doc.get("issuer", "").rstrip("/") != self.issuer:
                raise IdTokenError("the identity provider's metadata names another issuer")
            self._config = doc
        return self._config

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, challenge: str
    ) -> str:
        cfg = await self.config()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid email profile",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{cfg['authorization_endpoint']}?{query}"

    async def exchange(self, *, code: str, verifier: str, redirect_uri: str) -> str:
        """Trade the IdP's code for its ID token (not yet verified)."""
        cfg = await self.config()
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        }
        if self._secret:
            data["client_secret"] = self._secret
        resp = await self.http.post(cfg["token_endpoint"], data=data)
        if resp.status_code != 200:
            raise IdTokenError(f"the identity provider refused the code (HTTP {resp.status_code})")
        token = resp.json().get("id_token")
        if not isinstance(token, str):
            raise IdTokenError("the identity provider returned no ID token")
        return token

    async def _key(self, kid: str | None) -> Any:
        if kid in self._keys:
            return self._keys[kid]
        # unknown kid: refetch (rotation), but not more often than every few seconds
        if time.monotonic() - self._keys_fetched >= JWKS_MIN_REFETCH_SECONDS or not self._keys:
            cfg = await self.config()
            resp = await self.http.get(cfg["jwks_uri"])
            resp.raise_for_status()
            self.jwks_fetches += 1
            self._keys_fetched = time.monotonic()
            keys: dict[str, Any] = {}
            for jwk in jwt.PyJWKSet.from_dict(resp.json()).keys:
                if jwk.key_type != "oct":
                    keys[jwk.key_id or ""] = jwk.key
            self._keys = keys
        key = self._keys.get(kid or "")
        if key is None:
            raise IdTokenError("the ID token is signed with an unknown key")
        return key

    async def verify(
        self, token: str, *, nonce: str | None, audiences: list[str] | None = None
    ) -> Identity:
        """Verify signature, issuer, audience, times and nonce; return subject and email."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise IdTokenError("the ID token uses a refused algorithm")
            key = await self._key(header.get("kid"))
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                audience=audiences or [self.client_id],
                issuer=self.issuer,
                leeway=30,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except IdTokenError:
            raise
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise IdTokenError(f"the ID token was refused ({type(exc).__name__})") from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise IdTokenError("the ID token's nonce does not match this login")
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is False:
            raise IdTokenError("the ID token carries no verified email")
        return Identity(str(claims["sub"]), email)
