"""Settings from the environment (prefix TENANTGATE_), validated once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the mediator reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="TENANTGATE_", extra="ignore")

    # database (connect as tenantgate_mediator; never a superuser)
    database_url: SecretStr = SecretStr("")
    pool_min_size: int = Field(default=2, ge=1, le=512)
    pool_max_size: int = Field(default=10, ge=1, le=512)
    pool_timeout: float = Field(default=5.0, gt=0, le=120)
    # None behind PgBouncer in transaction mode (no server-side prepared statements)
    prepare_threshold: int | None = 0
    statement_timeout_ms: int = Field(default=5000, ge=0)

    # tokens
    issuer: str = "tenantgate"
    # RFC 9728: the authorization server hosts are sent to (a URL, checked at start)
    authorization_server: str | None = None
    required_scopes: list[str] = []  # every token needs these; else 403 insufficient_scope
    scopes_supported: list[str] = []  # named in the metadata and in the 401 challenge's scope
    audience: str = "http://127.0.0.1:8765/mcp"
    jwt_algorithms: list[Literal["ES256", "EdDSA", "HS256"]] = ["ES256", "EdDSA"]
    jwt_public_key_file: Path | None = None
    jwks_file: Path | None = None
    jwks_url: str | None = None
    dev_hs256_secret: SecretStr | None = None  # development only, loud at start
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    max_token_lifetime_seconds: int = Field(default=3600, ge=60, le=86400)
    token: SecretStr | None = None  # stdio: the host starts the server with its token
    jwks_max_age_seconds: int = Field(default=3600, ge=60, le=86400)  # refetch a JWKS this old
    # an unknown kid refetches the JWKS, at most this often
    jwks_min_refetch_seconds: int = Field(default=30, ge=1, le=3600)

    # http
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8765, ge=0, le=65535)
    http_path: str = "/mcp"
    allowed_hosts: list[str] = []
    allowed_origins: list[str] = []
    max_request_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    workers: int = Field(default=1, ge=1, le=64)

    # logs (stderr): one line per HTTP request, never a token, secret or argument value
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # OpenTelemetry traces (mediator/tracing.py, the `otel` extra): None follows the standard
    # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables, True/False forces them on or off
    otel: bool | None = None

    # Per-call limits (rate, rows, bytes), cost, scope and approval are not settings: the database
    # reads them from the catalog (tenantgate.tools) and the tool definitions, never from us.
    # This only decides when a result's text content shrinks to a one-line summary so that data
    # and text together stay under it (mediator/results.py); the data was capped by the database.
    max_result_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)

    @field_validator("prepare_threshold", mode="before")
    @classmethod
    def _none_words(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "null", "off"):
            return None
        return value

    @field_validator("otel", mode="before")
    @classmethod
    def _unset_otel(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _log_words(cls, value: object) -> object:
        if isinstance(value, str):
            word = value.strip()
            levels = ("debug", "info", "warning", "error")
            return word.upper() if word.lower() in levels else word.lower()
        return value

    @field_validator("authorization_server")
    @classmethod
    def _authorization_server_is_url(cls, value: str | None) -> str | None:
        from tenantgate.mediator.discovery import is_http_url

        if value is not None and not is_http_url(value):
            raise ValueError(
                "TENANTGATE_AUTHORIZATION_SERVER must be the authorization server's URL, "
                "e.g. https://auth.example.com (no query, no fragment)"
            )
        return value

    @property
    def dev_mode(self) -> bool:
        return self.dev_hs256_secret is not None
