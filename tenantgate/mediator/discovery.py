"""How a host finds out where to get a token: RFC 9728 metadata and RFC 6750 challenges.

The metadata names the authorization server by URL (hosts such as mcp-remote parse it as one);
the challenge carries no `error` when no credentials were sent (RFC 6750 section 3.1), says
`invalid_token` when a token was refused, and `insufficient_scope` (403) with the scope needed
when a valid token lacks it, so that a host can step up.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson

from tenantgate.mediator.settings import Settings

METADATA_PREFIX = "/.well-known/oauth-protected-resource"


def is_http_url(value: str) -> bool:
    """An absolute http(s) URL with a host, no fragment, no query, no user info."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not parts.fragment
        and not parts.query
        and parts.username is None
        and parts.password is None
    )


def authorization_servers(settings: Settings) -> list[str]:
    """The authorization server URLs to advertise: the setting, else an issuer that is a URL."""
    if settings.authorization_server:
        return [settings.authorization_server]
    if is_http_url(settings.issuer):
        return [settings.issuer]
    return []  # a bare issuer name is no URL: advertising it breaks hosts' discovery


def metadata_url(resource: str) -> str:
    scheme, _, rest = resource.partition("://")
    authority, slash, path = rest.partition("/")
    suffix = f"/{path}" if slash and path else ""
    return f"{scheme}://{authority}{METADATA_PREFIX}{suffix}"


def resource_metadata(settings: Settings) -> bytes:
    """The RFC 9728 document, serialised once."""
    doc: dict[str, object] = {
        "resource": settings.audience,
        "bearer_methods_supported": ["header"],
        "resource_name": "tenantgate mediator",
    }
    servers = authorization_servers(settings)
    if servers:
        doc["authorization_servers"] = servers
    scopes = list(dict.fromkeys([*settings.scopes_supported, *settings.required_scopes]))
    if scopes:
        doc["scopes_supported"] = scopes
    return orjson.dumps(doc)


def _quoted(value: str) -> str:
    return value.replace("\\", "").replace('"', "")


class Challenges:
    """The WWW-Authenticate values of the mediator, built once."""

    def __init__(self, settings: Settings) -> None:
        meta = _quoted(metadata_url(settings.audience))
        wanted = _quoted(" ".join(settings.required_scopes or settings.scopes_supported))
        scope_part = f', scope="{wanted}"' if wanted else ""
        needed = _quoted(" ".join(settings.required_scopes))
        self.missing = f'Bearer resource_metadata="{meta}"{scope_part}'.encode()
        self.invalid = (
            'Bearer error="invalid_token", error_description="token missing or invalid", '
            f'resource_metadata="{meta}"{scope_part}'
        ).encode()
        self.insufficient = (
            'Bearer error="insufficient_scope", error_description="this token lacks a scope", '
            f'resource_metadata="{meta}", scope="{needed}"'
        ).encode()

    def for_request(self, authorization: bytes | None) -> bytes:
        """No credentials sent: no error code (RFC 6750 section 3.1); otherwise invalid_token."""
        return self.missing if not authorization else self.invalid

    @staticmethod
    def lacks_scope(required: frozenset[str], granted: frozenset[str]) -> bool:
        return not required <= granted
