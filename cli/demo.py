"""`tenantgate demo`: embedded Postgres, migrated and seeded, the mediator on 127.0.0.1, tokens."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg import sql
from pydantic import SecretStr

from mediator.demo_data import ALL_SCOPES, World, seed
from mediator.sessions import OpenedSession, SessionManager
from mediator.settings import Settings
from mediator.tokens import TokenSigner

REPO = Path(__file__).resolve().parent.parent
ROLES = ("tenantgate_mediator", "tenantgate_session_manager", "tenantgate_admin")
DEMO_SCOPES = [s for s in ALL_SCOPES if s != "read:pii"]  # PII stays masked in the demo


def _migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        command.upgrade(Config(toml_file=str(REPO / "pyproject.toml")), "head")
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous


class DemoEnv:
    """Everything the demo set up; DSNs carry run-time passwords that die with the server."""

    def __init__(
        self,
        server: Any,
        dbname: str,
        passwords: dict[str, str],
        port: int,
        world: World,
        workdir: Path,
    ) -> None:
        self.server, self.dbname, self.passwords, self.port = server, dbname, passwords, port
        self.world, self.workdir = world, workdir
        key = ec.generate_private_key(ec.SECP256R1())  # generated now, never written to disk
        pub = workdir / "signing-key.pub.pem"
        pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.settings = Settings(
            database_url=SecretStr(self.dsn("tenantgate_mediator")),
            issuer="tenantgate-demo",
            audience=self.url,
            jwt_public_key_file=pub,
            http_port=port,
            pool_min_size=2,
            pool_max_size=8,
        )
        self.signer = TokenSigner(
            issuer="tenantgate-demo", audience=self.url, private_key=key, algorithm="ES256"
        )
        self.sessions = SessionManager(self.dsn("tenantgate_session_manager"), self.signer)

    def dsn(self, role: str | None = None) -> str:
        if role is None:
            return str(self.server.dsn(self.dbname))
        return str(self.server.dsn(self.dbname, user=role, password=self.passwords[role]))

    def open(self, customer: str, scopes: list[str] | None = None) -> OpenedSession:
        org = self.world.northwind
        return self.sessions.open(
            org_id=org.org_id,
            operator_id=org.operator_id,
            connector_id=org.connector_id,
            customer_id=org.customers[customer].customer_id,
            scopes=scopes or DEMO_SCOPES,
            ttl_seconds=3600,
        )


def setup(port: int) -> DemoEnv:
    from cli import pgserver

    server = pgserver.start_embedded()
    try:
        dbname = "tenantgate_demo"
        passwords = {role: secrets.token_urlsafe(18) for role in ROLES}
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
        auth = f"{server.user}:{server.password}" if server.password else server.user
        _migrate(f"postgresql://{auth}@{server.host}:{server.port}/{dbname}")
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            for role, password in passwords.items():
                conn.execute(
                    sql.SQL("alter role {} password {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
        # The demo schema and its tools file are not in the production migrations: install them.
        from cli.demo_schema import install_demo

        with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
            install_demo(conn)
        world = seed(server.dsn(dbname))
        workdir = Path(tempfile.mkdtemp(prefix="tenantgate-demo-"))
        return DemoEnv(server, dbname, passwords, port, world, workdir)
    except BaseException:
        server.stop()
        raise


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_http_thread(settings: Settings) -> tuple[Any, threading.Thread]:
    import uvicorn

    from mediator.http import HttpApp

    config = uvicorn.Config(
        HttpApp(settings),
        host="127.0.0.1",
        port=settings.http_port,
        lifespan="on",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the mediator did not start")
        time.sleep(0.05)
    return server, thread


def demo(
    scripted: Annotated[
        bool,
        typer.Option(
            "--scripted", help="Play a narrated session with the SDK's client, then exit."
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="HTTP port on 127.0.0.1.")] = 8765,
) -> None:
    """Start an embedded Postgres, seed two orgs, serve the mediator, print ready tokens."""
    typer.echo("starting embedded PostgreSQL, migrating, seeding ...", err=True)
    env = setup(_free_port(port))
    try:
        acme, beta = env.open("Acme"), env.open("Beta")
        if scripted:
            server, thread = start_http_thread(env.settings)
            try:
                ok = asyncio.run(play(env, acme, beta))
            finally:
                server.should_exit = True
                thread.join(10)
            raise typer.Exit(0 if ok else 1)
        print_tokens(env, acme, beta)
        from mediator.http import serve_http

        serve_http(env.settings)
    finally:
        env.server.stop()


def print_tokens(env: DemoEnv, acme: OpenedSession, beta: OpenedSession) -> None:
    typer.echo(f"\ntenantgate mediator on {env.url} (Streamable HTTP, loopback only)\n")
    for name, s in (("Acme", acme), ("Beta", beta)):
        typer.echo(f"token for customer {name} (valid 1 hour):\n{s.token}\n")
    typer.echo(
        "connect a real MCP client (as Acme; swap in Beta's token to see the other customer):\n"
        f"  TOKEN={acme.token}\n"
        f"  npx @modelcontextprotocol/inspector --cli {env.url} --transport http "
        '--method tools/list --header "Authorization: Bearer $TOKEN"\n'
        f"  npx @modelcontextprotocol/inspector --cli {env.url} --transport http "
        "--method tools/call --tool-name account_health "
        '--header "Authorization: Bearer $TOKEN"\n'
        "Ctrl-C stops the mediator and deletes the database."
    )


@asynccontextmanager
async def _client(url: str, token: str) -> AsyncIterator[Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with (
        http,
        Client(streamable_http_client(url, http_client=http), mode="legacy", cache=None) as client,
    ):
        yield client


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def play(env: DemoEnv, acme: OpenedSession, beta: OpenedSession) -> bool:
    """The narrated session; True when every step behaved as promised."""
    from mediator.approvals import Approvals
    from mediator.tokens import TokenVerifier

    failures: list[str] = []

    def step(title: str, good: bool, detail: str) -> None:
        typer.echo(f"[{'ok' if good else 'FAIL'}] {title}: {detail}")
        if not good:
            failures.append(title)

    org = env.world.northwind
    async with _client(env.url, acme.token) as c:
        tools = sorted(t.name for t in (await c.list_tools()).tools)
        step("tools/list (Acme session)", "account_health" in tools, ", ".join(tools))
        r = await c.call_tool("account_health", {})
        step("allowed read", not r.is_error, _text(r))
        r = await c.call_tool("list_tickets", {"customer_id": org.customers["Beta"].customer_id})
        step("cross-tenant argument", r.is_error, _text(r))
        claims = TokenVerifier(env.settings).verify(acme.token)
        forged = env.signer.mint(
            operator_id=claims.operator_id,
            org_id=claims.org_id,
            connector_id=claims.connector_id,
            customer_id=org.customers["Beta"].customer_id,
            session_id=claims.session_id,
            session_secret=claims.session_secret,
            scopes=sorted(claims.scopes),
            lifetime_seconds=300,
        )
    async with _client(env.url, forged) as c:
        r = await c.call_tool("list_tickets", {})
        step("Acme's session pointed at Beta", r.is_error and _text(r) == "not found", _text(r))
    async with _client(env.url, beta.token) as c:
        r = await c.call_tool("get_subscription", {})
        step("Beta reads its subscription", not r.is_error, _text(r))
        with psycopg.connect(env.dsn("tenantgate_admin"), autocommit=True) as conn:
            conn.execute(
                "update tenantgate.customer_accounts set status = 'paused'"
                " where org_id = %s and customer_id = %s",
                (org.org_id, org.customers["Beta"].customer_id),
            )
        r = await c.call_tool("get_subscription", {})
        step("Beta paused, next call", r.is_error and _text(r) == "not found", _text(r))
    async with _client(env.url, acme.token) as c:
        args = {"invoice_id": org.customers["Acme"].invoice_ids[0], "amount_cents": 2500}
        r = await c.call_tool("issue_refund", args)
        step("refund asks for approval", r.is_error and "approval" in _text(r), _text(r))
        approval_id = _text(r).split("approval ")[-1].split(" ")[0]
        Approvals(env.dsn("tenantgate_admin")).approve(
            org.org_id, approval_id, org.second_operator_id
        )
        r = await c.call_tool("issue_refund", args)
        step("approved refund runs once", not r.is_error, _text(r))
        with psycopg.connect(env.dsn(), autocommit=True) as conn:
            conn.execute(
                "update tenantgate.credit_accounts set balance = 1 where org_id = %s", (org.org_id,)
            )
        r1 = await c.call_tool("list_invoices", {})
        r2 = await c.call_tool("list_invoices", {})
        step("credits run out", not r1.is_error and r2.is_error, _text(r2))
    with psycopg.connect(env.dsn("tenantgate_admin"), autocommit=True) as conn:
        rows = conn.execute(
            "select org_id, rows_checked, first_broken_seq, problem"
            " from tenantgate.audit_verify(%s)",
            (org.org_id,),
        ).fetchall()
    intact = bool(rows) and all(r[2] is None for r in rows)
    step("audit chain verifies", intact, f"{rows[0][1] if rows else 0} rows, intact={intact}")
    typer.echo(
        "demo finished: "
        + ("every promise held" if not failures else f"{len(failures)} step(s) failed")
    )
    return not failures


if __name__ == "__main__":  # `python -m cli.demo`, what `tenantgate demo` runs
    typer.run(demo)
