"""The demo's authorization server: next to the mediator, with the development IdP."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from tenantgate.cli.demo import DemoEnv


def start_authz(env: DemoEnv) -> tuple[Any, threading.Thread]:
    """Run `tenantgate authz --dev-idp` for the demo database in a thread; wait until it listens."""
    import uvicorn
    from pydantic import SecretStr

    from tenantgate.authz.server import build
    from tenantgate.authz.settings import AuthzSettings

    settings = AuthzSettings(
        issuer=env.authz_url,
        resource=env.url,
        database_url=SecretStr(env.dsn("tenantgate_session_manager")),
        access_token_seconds=3600,
    )
    server = build(settings, env.signer, dev_idp=True)
    port = urlsplit(env.authz_url).port or 8766
    config = uvicorn.Config(server.app(), host="127.0.0.1", port=port, lifespan="on",
                            log_level="warning", access_log=False)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the authorization server did not start")
        time.sleep(0.05)
    return uv, thread


def print_connect(env: DemoEnv) -> None:
    typer.echo(
        f"\nauthorization server on {env.authz_url} (DEVELOPMENT identity provider: log in as "
        "csm@northwind.example, lead@northwind.example or csm@globex.example)\n"
        f"add as a custom connector (Claude Desktop, ChatGPT, VS Code): {env.url}\n"
        "or connect through OAuth from a terminal (a browser opens for login and consent):\n"
        f"  npx -y mcp-remote {env.url} --transport http-only\n"
        f"  npx -y @modelcontextprotocol/inspector@2  # then connect to {env.url} over "
        "Streamable HTTP without a token: it runs the OAuth flow\n"
        f"approvals for operators: {env.authz_url}/approvals\n"
    )
