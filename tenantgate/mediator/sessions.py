"""The session manager's API (the trusted product backend): open a session and mint its token."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from tenantgate.mediator.errors import NotFound
from tenantgate.mediator.tokens import TokenSigner


@dataclass(frozen=True, slots=True)
class OpenedSession:
    session_id: str
    expires_at: dt.datetime
    token: str

    def __repr__(self) -> str:  # the token is a credential
        return f"OpenedSession(session_id={self.session_id}, expires_at={self.expires_at})"


class SessionManager:
    """Opens and ends sessions as tenantgate_session_manager; the secret never reaches SQL."""

    def __init__(self, dsn: str, signer: TokenSigner) -> None:
        self._dsn = dsn
        self.signer = signer

    def open(
        self,
        *,
        org_id: str,
        operator_id: str,
        connector_id: str,
        customer_id: str,
        scopes: Sequence[str],
        ttl_seconds: int = 900,
    ) -> OpenedSession:
        """Open a session for (org, operator, connector, customer, scopes) and mint its token.

        The token lives no longer than the session (and the mediator's lifetime cap).
        """
        secret = secrets.token_urlsafe(32)
        digest = hashlib.sha256(secret.encode()).digest()
        try:
            with psycopg.connect(self._dsn, autocommit=True) as conn:
                row = conn.execute(
                    "select session_id, expires_at from tenantgate.open_session("
                    "%s, %s, %s, %s, %s, make_interval(secs => %s), %s)",
                    (
                        org_id,
                        operator_id,
                        connector_id,
                        customer_id,
                        list(scopes),
                        ttl_seconds,
                        digest,
                    ),
                ).fetchone()
        except psycopg.errors.NoDataFound:
            raise NotFound("cannot open session: not found or inactive") from None
        assert row is not None
        session_id, expires_at = str(row[0]), row[1]
        token = self.signer.mint(
            operator_id=operator_id,
            org_id=org_id,
            connector_id=connector_id,
            customer_id=customer_id,
            session_id=session_id,
            session_secret=secret,
            scopes=tuple(scopes),
            lifetime_seconds=ttl_seconds,
        )
        return OpenedSession(session_id, expires_at, token)

    def end(self, org_id: str, session_id: str) -> bool:
        """End a session now: its token stops working on the next call, its history is gone."""
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            row = conn.execute(
                "select tenantgate.end_session(%s, %s)", (org_id, session_id)
            ).fetchone()
        return bool(row and row[0])

    def purge(self) -> tuple[int, int]:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            row = conn.execute("select * from tenantgate.purge_sessions()").fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)
