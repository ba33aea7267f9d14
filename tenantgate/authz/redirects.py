"""Redirect URI rules and PKCE: the two things that keep a code from reaching the wrong hands.

Redirect URIs: http on a loopback address with any port (native clients such as mcp-remote and
VS Code pick a free port, RFC 8252 section 7.3), or an exact https URL. Nothing else: no other
http, no custom schemes, no fragments, no wildcards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "::1", "localhost")
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}\Z")
CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}\Z")


def _parts(uri: str) -> tuple[str, str, int | None, str, str] | None:
    try:
        p = urlsplit(uri)
        port = p.port
    except ValueError:
        return None
    if p.fragment or p.username or p.password or not p.hostname or len(uri) > 2000:
        return None
    return p.scheme, p.hostname, port, p.path, p.query


def is_loopback(uri: str) -> bool:
    parts = _parts(uri)
    return parts is not None and parts[0] == "http" and parts[1] in LOOPBACK


def registrable(uri: str) -> bool:
    """May a client register (or list in its metadata document) this redirect URI?"""
    parts = _parts(uri)
    if parts is None:
        return False
    return parts[0] == "https" or is_loopback(uri)


def matches(requested: str, registered: list[str]) -> bool:
    """Exact match, except that a loopback URI may differ in its port."""
    if not registrable(requested):
        return False
    if requested in registered:
        return True
    if not is_loopback(requested):
        return False
    want = _parts(requested)
    assert want is not None
    for uri in registered:
        have = _parts(uri)
        same = have is not None and (have[0], have[1], have[3], have[4]) == (
            want[0], want[1], want[3], want[4])
        if same and is_loopback(uri):
            return True
    return False


def s256(verifier: str) -> str:
    raw = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pkce_ok(verifier: str | None, challenge: str) -> bool:
    if not verifier or not VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
