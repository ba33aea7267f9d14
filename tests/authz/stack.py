"""A running mediator + authorization server (with the development IdP) on loopback, and a
scripted browser that walks the login and consent pages the way a person would."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from tenantgate.authz.app import AuthzServer
from tenantgate.authz.server import build
from tenantgate.authz.settings import AuthzSettings
from tenantgate.mediator.demo_data import World
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(app: Any, sock: socket.socket, **options: Any) -> Iterator[None]:
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", access_log=False, loop="asyncio", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Stack:
    mcp_url: str
    as_url: str
    world: World
    server: AuthzServer
    signer: TokenSigner
    mediator_settings: Settings


@dataclass
class Form:
    action: str
    fields: dict[str, str]
    radios: dict[str, str]  # label text -> value
    checkboxes: list[str]


INPUT = re.compile(r"<input ([^>]*)>([^<]*)")
ATTR = re.compile(r'(\w+)(?:=(?:"([^"]*)"|([^\s>]*)))?')


def parse_form(html: str) -> Form:
    match = re.search(r'<form method=post action="([^"]*)"', html)
    assert match, html[:500]
    fields: dict[str, str] = {}
    radios: dict[str, str] = {}
    boxes: list[str] = []
    for attrs_text, label in INPUT.findall(html):
        attrs = {m[0]: unescape(m[1] or m[2]) for m in ATTR.findall(attrs_text)}
        if attrs.get("type") == "hidden":
            fields[attrs["name"]] = attrs.get("value", "")
        elif attrs.get("type") == "radio":
            radios[label.strip().split(" (")[0]] = attrs["value"]
        elif attrs.get("type") == "checkbox":
            boxes.append(attrs["value"])
    return Form(unescape(match.group(1)), fields, radios, boxes)


class Browser:
    """Cookies, redirects followed by hand, forms read from the HTML, as a browser would."""

    def __init__(self) -> None:
        self.http = httpx.Client(follow_redirects=False, timeout=20)

    def close(self) -> None:
        self.http.close()

    def follow(self, response: httpx.Response, stop_at: str) -> httpx.Response | str:
        """Follow redirects until a page, or until one points at `stop_at` (returned as a URL)."""
        while response.status_code in (302, 303, 307):
            location = str(response.headers["location"])
            target = str(response.url.join(location))
            if target.startswith(stop_at):
                return target
            response = self.http.get(target)
        return response

    def login(self, start: httpx.Response, email: str, stop_at: str) -> httpx.Response | str:
        page = self.follow(start, stop_at)
        if isinstance(page, str) or "Development login" not in page.text:
            return page
        form = parse_form(page.text)
        post = self.http.post(str(page.url.join(form.action)), data={**form.fields,
                                                                     "email": email})
        return self.follow(post, stop_at)

    def consent(
        self,
        authorize_url: str,
        redirect_uri: str,
        *,
        email: str = "csm@northwind.example",
        customer: str = "Acme",
        scopes: list[str] | None = None,
        tamper: dict[str, str] | None = None,
    ) -> str:
        """Walk authorize -> login -> consent and return the URL the client gets back."""
        page = self.login(self.http.get(authorize_url), email, redirect_uri)
        if isinstance(page, str):
            return page
        if "Connect an AI host" not in page.text:
            return f"page:{page.status_code}:{page.text}"
        form = parse_form(page.text)
        data: dict[str, Any] = dict(form.fields)
        data["customer"] = (tamper or {}).get("customer", form.radios.get(customer, ""))
        data["decision"] = "allow"
        data["scope"] = form.checkboxes if scopes is None else scopes
        if tamper and "csrf" in tamper:
            data["csrf"] = tamper["csrf"]
        post = self.http.post(str(page.url.join(form.action)), data=data)
        result = self.follow(post, redirect_uri)
        if isinstance(result, str):
            return result
        return f"page:{result.status_code}:{result.text}"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def make_stack_settings(
    as_port: int, mcp_port: int, session_manager_dsn: str, **extra: Any
) -> AuthzSettings:
    return AuthzSettings(
        issuer=f"http://127.0.0.1:{as_port}",
        resource=f"http://127.0.0.1:{mcp_port}/mcp",
        database_url=session_manager_dsn,  # type: ignore[arg-type]
        **extra,
    )


def build_server(settings: AuthzSettings, signer: TokenSigner) -> AuthzServer:
    return build(settings, signer, dev_idp=True)
