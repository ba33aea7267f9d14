"""Build and run the authorization server (with the development IdP when asked)."""

from __future__ import annotations

import logging
from pathlib import Path

from tenantgate.authz.app import AuthzServer
from tenantgate.authz.devidp import DEFAULT_USERS, DevIdp
from tenantgate.authz.settings import AuthzSettings
from tenantgate.mediator.tokens import TokenSigner

logger = logging.getLogger("tenantgate.authz")

DEV_IDP_CLIENT_ID = "tenantgate-authz-dev"


def with_dev_idp(settings: AuthzSettings) -> tuple[AuthzSettings, DevIdp]:
    """Settings pointing at the development IdP mounted under <issuer>/dev-idp, and that IdP."""
    issuer = f"{settings.issuer}/dev-idp"
    dev = DevIdp(issuer, DEV_IDP_CLIENT_ID, f"{settings.issuer}/callback", DEFAULT_USERS)
    updated = settings.model_copy(
        update={"idp_issuer": issuer, "idp_client_id": DEV_IDP_CLIENT_ID,
                "idp_client_secret": None}
    )
    logger.warning("DEVELOPMENT IDENTITY PROVIDER mounted at %s: anyone can log in", issuer)
    return updated, dev


def signer_for(settings: AuthzSettings, key_file: Path | None = None) -> TokenSigner:
    path = key_file or settings.signing_key_file
    if path is None:
        raise SystemExit(
            "no signing key: set TENANTGATE_AUTHZ_SIGNING_KEY_FILE to the PEM private key whose "
            "public half the mediator verifies with"
        )
    return TokenSigner.from_pem_file(
        path,
        issuer=settings.issuer,
        audience=settings.resource,
        algorithm=settings.signing_algorithm,
        kid=settings.signing_kid,
    )


def build(settings: AuthzSettings, signer: TokenSigner, dev_idp: bool = False) -> AuthzServer:
    dev = None
    if dev_idp:
        settings, dev = with_dev_idp(settings)
    if not settings.idp_issuer or not settings.idp_client_id:
        raise SystemExit(
            "no identity provider: set TENANTGATE_AUTHZ_IDP_ISSUER and "
            "TENANTGATE_AUTHZ_IDP_CLIENT_ID (or run with --dev-idp for development)"
        )
    if not settings.database_url.get_secret_value():
        raise SystemExit(
            "no database: set TENANTGATE_AUTHZ_DATABASE_URL (role tenantgate_session_manager)"
        )
    return AuthzServer(settings, signer, dev_idp=dev)
