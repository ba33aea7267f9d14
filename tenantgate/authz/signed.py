"""Tamper-proof, expiring values for cookies and forms (HMAC-SHA256 over compact JSON).

The key is random per process unless configured: a restart logs everyone out, nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def mac(self, *parts: str) -> str:
        return _b64(hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256).digest())

    def dumps(self, purpose: str, value: dict[str, Any], seconds: int) -> str:
        body = _b64(json.dumps({"v": value, "e": int(time.time()) + seconds}).encode())
        return f"{body}.{self.mac(purpose, body)}"

    def loads(self, purpose: str, text: str | None) -> dict[str, Any] | None:
        """The value, or None when missing, forged, for another purpose, or expired."""
        if not text or text.count(".") != 1 or len(text) > 8192:
            return None
        body, mac = text.split(".")
        if not hmac.compare_digest(mac, self.mac(purpose, body)):
            return None
        try:
            doc = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(doc, dict) or int(doc.get("e", 0)) < time.time():
            return None
        value = doc.get("v")
        return value if isinstance(value, dict) else None
