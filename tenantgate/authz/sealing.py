"""Hashes and sealed secrets: what the database keeps of codes, refresh tokens and sessions.

A code or refresh token is stored as its sha256. The session secret it leads to is sealed with
AES-GCM under a key derived (HKDF-SHA256) from the code or token itself, so only its holder can
open it: a reader of the database gets neither the token nor the secret.
"""

from __future__ import annotations

import hashlib
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = b"tenantgate-authz-seal-v1"


def new_token() -> str:
    """A random bearer value (codes, refresh tokens): 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _key(token: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(token.encode())


def seal(secret: str, token: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(token)).encrypt(nonce, secret.encode(), INFO)


def unseal(sealed: bytes, token: str) -> str | None:
    """The secret, or None when `token` is not the one it was sealed under."""
    try:
        return AESGCM(_key(token)).decrypt(sealed[:12], sealed[12:], INFO).decode()
    except (InvalidTag, ValueError):
        return None
