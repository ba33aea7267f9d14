"""Small steps of the OAuth flow, done by hand with httpx (the SDK's client is tested apart)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import httpx

from tenantgate.authz.redirects import s256
from tests.authz.stack import Browser, Stack, query

REDIRECT = "http://127.0.0.1:9/callback"


def register(stack: Stack, redirect_uris: list[str] | None = None) -> str:
    r = httpx.post(
        f"{stack.as_url}/register",
        json={"redirect_uris": redirect_uris or [REDIRECT], "client_name": "test host"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["client_id"])


def authorize_url(stack: Stack, client_id: str, **overrides: str | None) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_hex(4),
        "resource": stack.mcp_url,
    }
    params.update(overrides)
    clean = {k: v for k, v in params.items() if v is not None}
    return f"{stack.as_url}/authorize?{urlencode(clean)}", verifier


def get_code(stack: Stack, browser: Browser, client_id: str, **kw: Any) -> tuple[str, str]:
    url, verifier = authorize_url(stack, client_id)
    back = browser.consent(url, REDIRECT, **kw)
    q = query(back)
    assert "code" in q, back
    return q["code"], verifier


def token(stack: Stack, **form: str) -> httpx.Response:
    return httpx.post(f"{stack.as_url}/token", data=form)


def redeem(stack: Stack, client_id: str, code: str, verifier: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "resource": stack.mcp_url,
    }
    form.update(extra)
    return token(stack, **form)


def rpc(stack: Stack, access_token: str, method: str = "tools/list",
        params: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(
        stack.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}},
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
    )


def refused(stack: Stack, access_token: str) -> bool:
    """True when the mediator no longer serves this token: 401, or the call comes back not found."""
    r = rpc(stack, access_token, "tools/call", {"name": "list_tickets", "arguments": {}})
    if r.status_code == 401:
        return True
    result = r.json()["result"]
    return bool(result.get("isError"))


def works(stack: Stack, access_token: str) -> bool:
    r = rpc(stack, access_token, "tools/call", {"name": "list_tickets", "arguments": {}})
    return r.status_code == 200 and not r.json()["result"].get("isError")
