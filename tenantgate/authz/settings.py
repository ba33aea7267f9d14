"""The authorization server's settings (prefix TENANTGATE_AUTHZ_), checked once at start."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tenantgate.mediator.discovery import is_http_url

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def is_loopback_url(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_NAMES


class AuthzSettings(BaseSettings):
    """Everything `tenantgate authz` reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="TENANTGATE_AUTHZ_", extra="ignore")

    # this server's own URL: the issuer in its metadata, its tokens and its redirects (RFC 9207)
    issuer: str = "http://127.0.0.1:8766"
    # the mediator's URL: the only resource (RFC 8707) and the audience of every token
    resource: str = "http://127.0.0.1:8765/mcp"
    # connect as tenantgate_session_manager
    database_url: SecretStr = SecretStr("")
    signing_key_file: Path | None = None
    signing_algorithm: str = "ES256"
    signing_kid: str | None = None

    # the company identity provider (OpenID Connect, code + PKCE)
    idp_issuer: str = ""
    idp_client_id: str = ""
    idp_client_secret: SecretStr | None = None
    # ID-token audiences accepted for token exchange (RFC 8693): the product backends' client ids
    exchange_audiences: list[str] = []

    session_ttl_seconds: int = Field(default=8 * 3600, ge=300, le=24 * 3600)
    access_token_seconds: int = Field(default=3600, ge=60, le=3600)
    code_ttl_seconds: int = Field(default=120, ge=10, le=600)
    login_seconds: int = Field(default=8 * 3600, ge=300, le=24 * 3600)

    # Client ID Metadata Documents
    cimd_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    cimd_max_bytes: int = Field(default=16 * 1024, ge=1024, le=256 * 1024)
    cimd_cache_seconds: int = Field(default=300, ge=0, le=86400)
    # development only: fetch documents from loopback (tests, the demo), with this CA bundle
    cimd_allow_loopback: bool = False
    cimd_ca_file: Path | None = None

    # HMAC key of login cookies and CSRF tokens (>= 32 characters); random per process if unset,
    # so set it when several replicas serve one issuer
    cookie_key: SecretStr | None = None

    # Dynamic Client Registration per caller address: burst, then this many a minute
    register_burst: int = Field(default=10, ge=1, le=10_000)
    register_per_minute: float = Field(default=6.0, gt=0, le=10_000)

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8766, ge=0, le=65535)

    @field_validator("issuer", "resource")
    @classmethod
    def _url(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError(f"{value!r} is not an http(s) URL without query or fragment")
        if urlsplit(value).scheme != "https" and not is_loopback_url(value):
            raise ValueError(f"{value!r} must be https (plain http only on loopback)")
        return value.rstrip("/") if urlsplit(value).path in ("", "/") else value

    @model_validator(mode="after")
    def _idp(self) -> AuthzSettings:
        if self.cookie_key is not None and len(self.cookie_key.get_secret_value()) < 32:
            raise ValueError("TENANTGATE_AUTHZ_COOKIE_KEY must be at least 32 characters")
        if self.idp_issuer and not is_http_url(self.idp_issuer):
            raise ValueError("TENANTGATE_AUTHZ_IDP_ISSUER must be the identity provider's URL")
        return self

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.issuer).scheme == "https"
