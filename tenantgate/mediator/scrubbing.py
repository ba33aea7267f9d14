"""Scrubbing a customer's key out of anything an upstream sends back (it may echo the key).

Every form a key can take in a response is replaced by ``[redacted]``: the raw key, its
url-encoded forms and its base64 forms (padded or not, standard or url-safe alphabet).
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any, Final

from tenantgate.mediator.keys import Secret

__all__ = ["REDACTED", "scrub"]

REDACTED: Final = "[redacted]"


def scrub(value: Any, key: Secret) -> Any:
    """``value`` (JSON-like) with every occurrence of the key replaced by [redacted]."""
    needles = _needles(key)
    return _scrub(value, needles)


def _needles(key: Secret) -> list[str]:
    raw = key.reveal()
    if not raw:
        return []
    forms = {
        raw,
        urllib.parse.quote(raw, safe=""),
        urllib.parse.quote_plus(raw),
        base64.b64encode(raw.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(raw.encode()).decode().rstrip("="),
    }
    return sorted(forms, key=len, reverse=True)


def _scrub(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, REDACTED)
        return value
    if isinstance(value, dict):
        return {_scrub(k, needles): _scrub(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item, needles) for item in value]
    return value
