"""DEVELOPMENT IDENTITY PROVIDER: a stand-in for Okta/Entra/Auth0 so the demo works offline.

Anyone who reaches its login page can log in as any listed person by clicking. It exists for
`tenantgate demo` and the tests, is mounted only when asked for (`tenantgate authz --dev-idp`),
and says so on every page. It speaks the same OpenID Connect the real IdP does (discovery, code +
PKCE, ES256 ID tokens, JWKS), so the authorization server's login code is the production code.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tenantgate.authz.pages import e, hidden, layout
from tenantgate.authz.redirects import pkce_ok
from tenantgate.authz.signed import Signer

BANNER = "DEVELOPMENT IDENTITY PROVIDER: anyone can log in here. Never use it in production."


@dataclass(frozen=True, slots=True)
class DevUser:
    email: str
    name: str


DEFAULT_USERS = (
    DevUser("csm@northwind.example", "Northwind CSM"),
    DevUser("lead@northwind.example", "Northwind lead"),
    DevUser("csm@globex.example", "Globex CSM"),
)


class DevIdp:
    def __init__(
        self, issuer: str, client_id: str, redirect_uri: str, users: tuple[DevUser, ...]
    ) -> None:
        self.issuer, self.client_id, self.redirect_uri = issuer.rstrip("/"), client_id, redirect_uri
        self.users = {u.email: u for u in users}
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.kid = secrets.token_hex(8)
        self._codes: dict[str, tuple[float, str, str, str]] = {}
        self._signer = Signer()

    def rotate_key(self) -> None:
        """A new signing key and kid (tests: the relying party refetches the JWKS)."""
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.kid = secrets.token_hex(8)

    def id_token(self, email: str, audience: str, nonce: str | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": f"dev|{email}",
            "email": email,
            "email_verified": True,
            "name": self.users[email].name if email in self.users else email,
            "iat": now,
            "exp": now + 600,
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.configuration),
                Route("/authorize", self.authorize, methods=["GET", "POST"]),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )

    async def configuration(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="ES256")
        return JSONResponse({"keys": [jwk]})

    async def authorize(self, request: Request) -> Response:
        if request.method == "GET":
            q = request.query_params
            fields = {k: q.get(k, "") for k in ("client_id", "redirect_uri", "state", "nonce",
                                                 "code_challenge", "code_challenge_method")}
        else:
            form = await request.form()
            fields = {k: str(form.get(k, "")) for k in ("client_id", "redirect_uri", "state",
                                                         "nonce", "code_challenge",
                                                         "code_challenge_method")}
        if fields["client_id"] != self.client_id or fields["redirect_uri"] != self.redirect_uri:
            return HTMLResponse(layout("Unknown client", "", BANNER), status_code=400)
        if fields["code_challenge_method"] != "S256" or not fields["code_challenge"]:
            return HTMLResponse(layout("PKCE S256 required", "", BANNER), status_code=400)
        csrf = self._signer.mac("devidp", fields["state"])
        if request.method == "GET":
            buttons = "".join(
                f'<button name=email value="{e(u.email)}">{e(u.name)} ({e(u.email)})</button><br>'
                for u in self.users.values()
            )
            body = (
                f'<form method=post action="authorize" class=card>'
                f"{hidden({**fields, 'csrf': csrf})}<p>Log in as:</p>{buttons}</form>"
            )
            return HTMLResponse(layout("Development login", body, BANNER))
        form = await request.form()
        email = str(form.get("email", ""))
        if not secrets.compare_digest(str(form.get("csrf", "")), csrf) or email not in self.users:
            return HTMLResponse(layout("Login refused", "", BANNER), status_code=400)
        code = secrets.token_urlsafe(24)
        self._codes[code] = (time.time() + 60, email, fields["nonce"], fields["code_challenge"])
        target = f"{self.redirect_uri}?{urlencode({'code': code, 'state': fields['state']})}"
        return RedirectResponse(target, status_code=303)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        entry = self._codes.pop(str(form.get("code", "")), None)
        if (
            entry is None
            or entry[0] < time.time()
            or form.get("client_id") != self.client_id
            or form.get("redirect_uri") != self.redirect_uri
            or not pkce_ok(str(form.get("code_verifier", "")), entry[3])
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        token = self.id_token(entry[1], self.client_id, entry[2] or None)
        return JSONResponse({"id_token": token, "token_type": "Bearer", "expires_in": 600})
