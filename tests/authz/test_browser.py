"""The login, consent and approvals pages in a real headless Chromium (Debian's package, driven
by Playwright for Python), with JavaScript off and a phone-sized window. Screenshots go to docs/."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.authz.helpers import authorize_url, redeem, register, works
from tests.authz.stack import Browser, Stack, query
from tests.authz.test_approvals import _pending_refund

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "authz"
PHONE = {"width": 390, "height": 844}

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]
    expect = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="needs Debian's chromium (apt-get install chromium) and playwright (pip, dev extra)",
)


@pytest.fixture
def chromium() -> Iterator[Any]:
    assert sync_playwright is not None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _context(chromium: Any) -> tuple[Any, list[str]]:
    context = chromium.new_context(java_script_enabled=False, viewport=PHONE)
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page, errors


@contextmanager
def host_callback() -> Iterator[tuple[str, list[str]]]:
    """A real loopback callback for the host: records what the browser lands on."""
    landed: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            landed.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"back at the host")

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/callback", landed
    finally:
        server.shutdown()
        server.server_close()


def test_login_and_consent_in_chromium_without_javascript_on_a_phone(
    stack: Stack, chromium: Any
) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    with host_callback() as (callback, landed):
        _consent_in_chromium(stack, chromium, callback, landed)


def _shows(page: Any, text: str) -> None:
    """The page a click led to shows `text`, once it has loaded (a click returns as soon as the
    navigation starts; reading the page then can see an empty document)."""
    expect(page.locator("body")).to_contain_text(text)


def _consent_in_chromium(stack: Stack, chromium: Any, callback: str, landed: list[str]) -> None:
    client_id = register(stack, [callback])
    url, verifier = authorize_url(stack, client_id, redirect_uri=callback)
    page, errors = _context(chromium)
    page.goto(url)
    assert "Development login" in page.content()
    assert "DEVELOPMENT IDENTITY PROVIDER" in page.content()
    page.screenshot(path=str(DOCS / "login.png"), full_page=True)
    page.get_by_role("button", name="Northwind CSM (csm@northwind.example)").click()
    _shows(page, "Connect an AI host")
    page.screenshot(path=str(DOCS / "consent.png"), full_page=True)
    page.get_by_label("Acme (product-db)").check()
    page.get_by_label("write:refunds").uncheck()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{callback}*")
    assert landed, page.content()[:500]
    q = query(landed[0])
    assert q["iss"] == stack.as_url
    body = redeem(stack, client_id, q["code"], verifier, redirect_uri=callback).json()
    assert "write:refunds" not in body["scope"].split()
    assert "read:tickets" in body["scope"].split()
    assert works(stack, body["access_token"])
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_consent_page_is_not_framable_in_chromium(stack: Stack, chromium: Any) -> None:
    headers = httpx.get(f"{stack.as_url}/approvals").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    page, _ = _context(chromium)
    html = f'<iframe src="{stack.as_url}/approvals" id=f></iframe>'
    page.route("http://framer.test/", lambda r: r.fulfill(body=html, content_type="text/html"))
    page.goto("http://framer.test/")
    frame = page.frames[-1]
    assert "Pending approvals" not in frame.content()


def test_approvals_page_in_chromium_on_a_phone(stack: Stack, chromium: Any) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    helper = Browser()
    _pending_refund(stack, helper)
    helper.close()
    page, errors = _context(chromium)
    page.goto(f"{stack.as_url}/approvals")
    page.get_by_role("button", name="Northwind lead (lead@northwind.example)").click()
    _shows(page, "issue_refund")
    page.screenshot(path=str(DOCS / "approvals.png"), full_page=True)
    page.get_by_role("button", name="Approve").click()
    _shows(page, "Approved.")
    _shows(page, "Nothing waits for a decision.")
    assert not [e for e in errors if "Content Security Policy" in e], errors
