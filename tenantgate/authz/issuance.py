"""Turning a live session into tokens: the access token is the session token, refreshes rotate.

The access token lives at most `access_token_seconds` and never past its session. A refresh
token is bound to its client, stored as a hash, and seals the session secret so the next access
token can carry it; it is only good while the session is live.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from tenantgate.authz.sealing import digest, new_token, seal
from tenantgate.authz.store import LiveSession, Store
from tenantgate.mediator.tokens import TokenSigner


class TokenError(Exception):
    """An OAuth error for the token endpoint: `code` is the RFC 6749 error code."""

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.code, self.description, self.status = code, description, status


class Issuer:
    def __init__(self, store: Store, signer: TokenSigner, access_token_seconds: int) -> None:
        self.store, self.signer, self.access_seconds = store, signer, access_token_seconds

    def access_token(
        self, *, org_id: str, session_id: str, secret: str, live: LiveSession, client_id: str
    ) -> tuple[str, int]:
        remaining = int((live.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
        lifetime = min(self.access_seconds, remaining)
        if lifetime < 5:
            raise TokenError("invalid_grant", "the session is over; authorize again")
        token = self.signer.mint(
            operator_id=live.operator_id,
            org_id=org_id,
            connector_id=live.connector_id,
            customer_id=live.customer_id,
            session_id=session_id,
            session_secret=secret,
            scopes=tuple(live.scopes),
            lifetime_seconds=lifetime,
            now=int(time.time()),
            client_id=client_id,
        )
        return token, lifetime

    async def issue(
        self,
        *,
        org_id: str,
        session_id: str,
        secret: str,
        client_id: str,
        with_refresh: bool,
    ) -> dict[str, Any]:
        """The token response for a live session (RFC 6749 section 5.1)."""
        live = await self.store.live(org_id, session_id)
        if live is None:
            raise TokenError("invalid_grant", "the session is over or no longer active")
        token, lifetime = self.access_token(
            org_id=org_id, session_id=session_id, secret=secret, live=live, client_id=client_id
        )
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(live.scopes),
        }
        if with_refresh:
            refresh = new_token()
            await self.store.store_refresh(
                digest(refresh), org_id, session_id, client_id, seal(secret, refresh)
            )
            body["refresh_token"] = refresh
        return body
