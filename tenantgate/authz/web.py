"""What every response of the authorization server carries, and its cookies.

Headers: a strict Content-Security-Policy (no script at all; the one inline stylesheet by hash),
`frame-ancestors 'none'` (no clickjacking of the consent button), no referrer (codes and state
never leak through Referer), no caching. Cookies: HttpOnly, SameSite=Lax, Secure on https.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import Response

from tenantgate.authz.pages import STYLE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                Awaitable[None]]

STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def csp(form_targets: str = "") -> str:
    return (
        "default-src 'none'; "
        f"style-src 'sha256-{STYLE_HASH}'; img-src 'self'; "
        f"form-action 'self'{(' ' + form_targets) if form_targets else ''}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


FIXED_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """ASGI middleware: every response gets the fixed headers and a CSP unless it set its own."""

    def __init__(self, app: ASGI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    h for h in message.get("headers", [])
                    if h[0].lower() not in {k for k, _ in FIXED_HEADERS}
                ]
                headers.extend(FIXED_HEADERS)
                if not any(h[0].lower() == b"content-security-policy" for h in headers):
                    headers.append((b"content-security-policy", csp().encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def set_cookie(response: Response, name: str, value: str, seconds: int, secure: bool) -> None:
    response.set_cookie(
        name, value, max_age=seconds, path="/", httponly=True, samesite="lax", secure=secure
    )


def clear_cookie(response: Response, name: str, secure: bool) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure)
