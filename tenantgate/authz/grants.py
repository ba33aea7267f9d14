"""The token and revocation endpoints: code + PKCE, refresh rotation, token exchange, RFC 7009.

Anything wrong with a presented code (client, redirect URI, verifier, resource) ends the session
it opened: a code is a one-shot credential, and a wrong presentation means someone else has it.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tenantgate.authz.issuance import TokenError
from tenantgate.authz.oidc import IdTokenError
from tenantgate.authz.redirects import pkce_ok
from tenantgate.authz.sealing import digest, new_token, seal, unseal
from tenantgate.authz.store import Choice

if TYPE_CHECKING:
    from tenantgate.authz.app import AuthzServer

logger = logging.getLogger("tenantgate.authz.grants")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a URN)
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _error(exc: TokenError) -> Response:
    return JSONResponse(
        {"error": exc.code, "error_description": exc.description},
        status_code=exc.status,
        headers=NO_STORE,
    )


class Grants:
    def __init__(self, server: AuthzServer) -> None:
        self.server = server

    @property
    def store(self) -> Any:
        return self.server.store

    async def open_and_code(
        self, login: dict[str, Any], chosen: Choice, scopes: list[str], req: dict[str, Any]
    ) -> str | None:
        """Open the session the operator consented to and return a fresh code for it."""
        secret = secrets.token_urlsafe(32)
        opened = await self.store.open_session(
            org_id=login["org_id"],
            operator_id=login["operator_id"],
            connector_id=chosen.connector_id,
            customer_id=chosen.customer_id,
            scopes=scopes,
            ttl_seconds=self.server.settings.session_ttl_seconds,
            secret_hash=digest(secret),
        )
        if opened is None:
            return None
        session_id, _ = opened
        code = new_token()
        await self.store.create_code(
            code_hash=digest(code),
            org_id=login["org_id"],
            session_id=session_id,
            client_id=req["client_id"],
            redirect_uri=req["redirect_uri"],
            code_challenge=req["challenge"],
            resource=req["resource"],
            sealed_secret=seal(secret, code),
            ttl_seconds=self.server.settings.code_ttl_seconds,
        )
        return code

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        grant = form.get("grant_type", "")
        try:
            if "resource" in form and not self.server.is_our_resource(form["resource"]):
                raise TokenError("invalid_target", "tokens are issued for this mediator only")
            if grant == "authorization_code":
                body = await self._code(form)
            elif grant == "refresh_token":
                body = await self._refresh(form)
            elif grant == TOKEN_EXCHANGE and self.server.settings.exchange_audiences:
                body = await self._exchange(form)
            else:
                raise TokenError("unsupported_grant_type", "authorization_code or refresh_token")
        except TokenError as exc:
            return _error(exc)
        return JSONResponse(body, headers=NO_STORE)

    async def _code(self, form: dict[str, str]) -> dict[str, Any]:
        code, client_id = form.get("code", ""), form.get("client_id", "")
        if not code or not client_id:
            raise TokenError("invalid_request", "code and client_id are required")
        r = await self.store.redeem_code(digest(code))
        if r.status == "replayed":
            logger.warning("authorization code replayed: session %s ended", r.session_id)
            raise TokenError("invalid_grant", "code already used; its tokens are revoked")
        if r.status != "ok":
            raise TokenError("invalid_grant", "code unknown or expired")
        if not (r.org_id and r.session_id and r.code_challenge and r.sealed_secret):
            raise TokenError("invalid_grant", "code unknown or expired")
        wrong = (
            r.client_id != client_id
            or r.redirect_uri != form.get("redirect_uri", "")
            or not pkce_ok(form.get("code_verifier"), r.code_challenge)
            or r.resource is None
            or not self.server.is_our_resource(r.resource)
        )
        secret = None if wrong else unseal(r.sealed_secret, code)
        if secret is None:
            await self.store.end_session(r.org_id, r.session_id)
            raise TokenError("invalid_grant", "code, client, redirect_uri or verifier mismatch")
        return await self.server.tokens.issue(
            org_id=r.org_id, session_id=r.session_id, secret=secret, client_id=client_id,
            with_refresh=True,
        )

    async def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        token, client_id = form.get("refresh_token", ""), form.get("client_id", "")
        if not token or not client_id:
            raise TokenError("invalid_request", "refresh_token and client_id are required")
        r = await self.store.use_refresh(digest(token), client_id)
        if r.status == "reused":
            logger.warning("refresh token reused: session %s ended", r.session_id)
        if r.status != "ok":
            raise TokenError("invalid_grant", "refresh token unknown, used or its session over")
        if not (r.org_id and r.session_id and r.sealed_secret):
            raise TokenError("invalid_grant", "refresh token unknown")
        secret = unseal(r.sealed_secret, token)
        if secret is None:
            raise TokenError("invalid_grant", "refresh token unknown")
        return await self.server.tokens.issue(
            org_id=r.org_id, session_id=r.session_id, secret=secret, client_id=client_id,
            with_refresh=True,
        )

    async def _exchange(self, form: dict[str, str]) -> dict[str, Any]:
        """RFC 8693: an IdP ID token for an operator + a customer -> a session token here."""
        if form.get("subject_token_type") != ID_TOKEN_TYPE:
            raise TokenError("invalid_request", f"subject_token_type must be {ID_TOKEN_TYPE}")
        try:
            identity = await self.server.oidc.verify(
                form.get("subject_token", ""),
                nonce=None,
                audiences=self.server.settings.exchange_audiences,
            )
        except IdTokenError as exc:
            raise TokenError("invalid_grant", str(exc)) from None
        ops = await self.store.operators_by_email(identity.email)
        if len(ops) != 1:
            raise TokenError("invalid_grant", "no active operator for this identity")
        op = ops[0]
        choices = await self.store.choices(op.org_id, op.operator_id)
        chosen = next((c for c in choices if c.customer_id == form.get("customer_id")), None)
        if chosen is None:
            raise TokenError("invalid_target", "customer not found")
        wanted = set(form.get("scope", "").split()) or set(chosen.scopes)
        scopes = sorted(wanted & set(chosen.scopes))
        if not scopes:
            raise TokenError("invalid_scope", "none of the requested scopes is offered")
        secret = secrets.token_urlsafe(32)
        ttl = self.server.settings.access_token_seconds
        opened = await self.store.open_session(
            org_id=op.org_id, operator_id=op.operator_id, connector_id=chosen.connector_id,
            customer_id=chosen.customer_id, scopes=scopes, ttl_seconds=ttl,
            secret_hash=digest(secret),
        )
        if opened is None:
            raise TokenError("invalid_target", "customer not found")
        body = await self.server.tokens.issue(
            org_id=op.org_id, session_id=opened[0], secret=secret,
            client_id=form.get("client_id", "token-exchange"), with_refresh=False,
        )
        body["issued_token_type"] = ACCESS_TOKEN_TYPE
        return body

    async def revoke(self, request: Request) -> Response:
        """RFC 7009: always 200; a known token of this client ends its session."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        token, client_id = form.get("token", ""), form.get("client_id", "")
        if not token:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if token.count(".") == 2:  # an access token: our own JWT
            try:
                claims = jwt.decode(
                    token,
                    self.server.signer.public_key(),
                    algorithms=[self.server.signer.algorithm],
                    audience=self.server.settings.resource,
                    issuer=self.server.issuer,
                    options={"verify_exp": False},
                )
            except jwt.PyJWTError:
                return Response(status_code=200, headers=NO_STORE)
            if claims.get("client_id") == client_id:
                await self.store.end_session(str(claims["tg_org"]), str(claims["tg_sid"]))
        else:
            await self.store.revoke_refresh(digest(token), client_id)
        return Response(status_code=200, headers=NO_STORE)
