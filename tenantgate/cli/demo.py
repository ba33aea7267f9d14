"""`tenantgate demo`: embedded Postgres, migrated and seeded, the mediator on 127.0.0.1, tokens."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
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

from tenantgate.mediator.demo_billing import DemoBilling
from tenantgate.mediator.demo_data import ALL_SCOPES, World, seed
from tenantgate.mediator.sessions import OpenedSession, SessionManager
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner

REPO = Path(__file__).resolve().parents[2]
ROLES = ("tenantgate_mediator", "tenantgate_session_manager", "tenantgate_admin")
# PII stays masked in the demo; write:billing lets Acme's session ask for a credit note upstream
DEMO_SCOPES = [*(s for s in ALL_SCOPES if s != "read:pii"), "write:billing"]


def _migrate(url: str) -> None:
    from alembic import command

    from tenantgate.cli.schema_files import alembic_config

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        command.upgrade(alembic_config(), "head")
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
        fixed_port: bool = True,
    ) -> None:
        self.server, self.dbname, self.passwords, self.port = server, dbname, passwords, port
        self.world, self.workdir = world, workdir
        self.billing: DemoBilling | None = None
        key = ec.generate_private_key(ec.SECP256R1())  # generated now, never written to disk
        pub = workdir / "signing-key.pub.pem"
        pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.key = key  # the authorization server signs with it; the mediator has the public key
        # The authorization server (issuer of every token): the next port when the mediator's was
        # chosen by the user (--port 8765 -> 8766), any free one with --port 0.
        authz_port = _free_port(port + 1) if fixed_port else _free_port(0)
        self.authz_url = f"http://127.0.0.1:{authz_port}"
        self.settings = Settings(
            database_url=SecretStr(self.dsn("tenantgate_mediator")),
            issuer=self.authz_url,
            authorization_server=self.authz_url,
            scopes_supported=DEMO_SCOPES,
            audience=self.url,
            jwt_public_key_file=pub,
            http_port=port,
            pool_min_size=2,
            pool_max_size=8,
        )
        self.signer = TokenSigner(
            issuer=self.authz_url, audience=self.url, private_key=key, algorithm="ES256"
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


def setup(port: int, *, fixed_port: bool = True) -> DemoEnv:
    from tenantgate.cli import pgserver

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
        from tenantgate.cli.demo_schema import install_demo

        with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
            install_demo(conn, with_billing=True)
        world = seed(server.dsn(dbname))
        workdir = Path(tempfile.mkdtemp(prefix="tenantgate-demo-"))
        env = DemoEnv(server, dbname, passwords, port, world, workdir, fixed_port)
        env.billing = setup_billing(env)
        return env
    except BaseException:
        server.stop()
        raise


BILLING_TOOLS = ("get_billing_status", "list_payments", "create_credit_note")


def setup_billing(env: DemoEnv) -> DemoBilling:
    """The fake billing API on loopback with a different key per customer, each key sealed under a
    key file of the demo's own, and the billing tools (tools/billing.yaml) enabled for Northwind.

    The mediator runs in this process, so the key file and the egress allowlist are handed to it
    through the environment, as an operator would (TENANTGATE_SECRET_KEYS_FILE, ..._EGRESS_ALLOW).
    """
    from tenantgate.mediator import secrets as customer_secrets
    from tenantgate.mediator.demo_billing import start_demo_billing
    from tenantgate.mediator.keygen import write_new_key
    from tenantgate.mediator.keys import FileKeyProvider

    org = env.world.northwind
    billing = start_demo_billing(list(org.customers))
    keyfile = env.workdir / "keys"
    kid = write_new_key(keyfile)
    os.environ.update(
        TENANTGATE_SECRET_KEYS_FILE=str(keyfile),
        TENANTGATE_SECRET_KEY_CURRENT=kid,
        TENANTGATE_EGRESS_ALLOW=billing.egress_allow,
    )
    provider = FileKeyProvider.from_env()
    with psycopg.connect(env.dsn("tenantgate_admin"), autocommit=True) as conn:
        conn.execute(
            "update tenantgate.connectors set base_url = %s where org_id = %s",
            (billing.base_url, org.org_id),
        )
        for name, customer in org.customers.items():
            ciphertext, used = customer_secrets.seal(billing.keys[name], provider)
            conn.execute(
                "insert into tenantgate.customer_secrets (org_id, customer_id, ciphertext, key_id)"
                " values (%s, %s, %s, %s)",
                (org.org_id, customer.customer_id, ciphertext, used),
            )
        for tool in BILLING_TOOLS:
            conn.execute(
                "insert into tenantgate.tools (org_id, connector_id, tool_name, required_scope,"
                " side_effect, credit_cost, approval, rate_burst, rate_per_second)"
                " select %s, %s, d.tool_name, d.default_scope, d.access = 'write', d.default_cost,"
                " d.default_approval, d.default_burst, d.default_per_second"
                " from tenantgate.tool_definitions d where d.tool_name = %s",
                (org.org_id, org.connector_id, tool),
            )
    return billing


def _free_port(preferred: int) -> int:
    """`preferred` when it is free (0: any free port); a busy port is an error, never swapped."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            typer.echo(
                f"tenantgate: port {preferred} on 127.0.0.1 is in use: stop what listens there, "
                "or pass --port N (--port 0 picks a free one)",
                err=True,
            )
            raise typer.Exit(1) from None
        return int(s.getsockname()[1])


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`: the database stops, files go


def start_http_thread(settings: Settings) -> tuple[Any, threading.Thread]:
    import uvicorn

    from tenantgate.mediator.http import HttpApp

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
    port: Annotated[
        int, typer.Option(help="HTTP port on 127.0.0.1 (0: any free port; a busy one is an error).")
    ] = 8765,
) -> None:
    """Start an embedded Postgres, seed two orgs, serve the mediator, print ready tokens."""
    from tenantgate.mediator.logs import configure

    configure(Settings().log_level, Settings().log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the request lines are the news
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    chosen = _free_port(port)
    typer.echo("starting embedded PostgreSQL, migrating, seeding ...", err=True)
    env = setup(chosen, fixed_port=port != 0)
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
        from tenantgate.cli.demo_authz import print_connect, start_authz

        # Everything listens before anything is printed: a reader of the output can connect at once.
        server, thread = start_http_thread(env.settings)
        try:
            start_authz(env)
            print_tokens(env, acme, beta)
            print_connect(env)
            while thread.is_alive():
                thread.join(0.5)
        finally:
            server.should_exit = True
            thread.join(10)
    except KeyboardInterrupt:
        pass  # Ctrl-C: the same quiet cleanup as SIGTERM
    finally:
        if env.billing is not None:
            env.billing.stop()
        env.server.stop()
        shutil.rmtree(env.workdir, ignore_errors=True)
        typer.echo("demo stopped: embedded PostgreSQL stopped, its files removed", err=True)


def claude_desktop_config(env: DemoEnv, token: str) -> dict[str, Any]:
    """The `mcpServers` entry that starts the mediator over stdio as one customer's session."""
    s = env.settings
    return {
        "mcpServers": {
            "tenantgate-demo-acme": {
                "command": sys.executable,
                "args": ["-m", "tenantgate.cli.serve", "--transport", "stdio"],
                "env": {
                    "TENANTGATE_DATABASE_URL": s.database_url.get_secret_value(),
                    "TENANTGATE_ISSUER": s.issuer,
                    "TENANTGATE_AUDIENCE": s.audience,
                    "TENANTGATE_JWT_PUBLIC_KEY_FILE": str(s.jwt_public_key_file),
                    "TENANTGATE_TOKEN": token,
                },
            }
        }
    }


def print_tokens(env: DemoEnv, acme: OpenedSession, beta: OpenedSession) -> None:
    typer.echo(f"\ntenantgate mediator on {env.url} (Streamable HTTP, loopback only)\n")
    typer.echo(
        "Who is who: Northwind is an org (a SaaS vendor using tenantgate); Acme and Beta are two\n"
        "of Northwind's customers (a second org, Globex, has a customer Gamma). Each token below\n"
        "is a session a Northwind operator opened for ONE customer: the agent holding it reaches\n"
        "that customer's rows and nothing else.\n"
    )
    for name, s in (("Acme", acme), ("Beta", beta)):
        typer.echo(f"token for Northwind's customer {name} (valid 1 hour):\n{s.token}\n")
    typer.echo(
        "connect a real MCP client (as Acme; swap in Beta's token to see the other customer):\n"
        f"  TOKEN={acme.token}\n"
        f"  npx -y @modelcontextprotocol/inspector@2 --cli {env.url} --transport http "
        '--method tools/list --header "Authorization: Bearer $TOKEN"\n'
        f"  npx -y @modelcontextprotocol/inspector@2 --cli {env.url} --transport http "
        "--method tools/call --tool-name account_health "
        '--header "Authorization: Bearer $TOKEN"\n'
    )
    from tenantgate.cli.demo_node import inspector_note, node_version

    note = inspector_note(node_version())
    if note is not None:
        typer.echo(note + "\n")
    typer.echo(
        "Claude Desktop (stdio, as Acme): add to claude_desktop_config.json:\n"
        + json.dumps(claude_desktop_config(env, acme.token), indent=2)
        + "\n"
    )
    typer.echo(
        "operator connection (tenantgate_admin: approvals, audit), e.g.\n"
        f"  tenantgate approvals list Northwind --dsn '{env.dsn('tenantgate_admin')}'\n"
        f"  tenantgate audit verify --dsn '{env.dsn('tenantgate_admin')}'\n"
        "Ctrl-C (or SIGTERM) stops the mediator and deletes the database."
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


async def play_billing(
    env: DemoEnv, acme: OpenedSession, beta: OpenedSession, step: Any
) -> None:
    """The HTTP-backed tools: each customer's own API key, never shown, rotated mid-session."""
    from tenantgate.mediator import secrets as customer_secrets
    from tenantgate.mediator.fake_upstream import Fault
    from tenantgate.mediator.keygen import write_new_key
    from tenantgate.mediator.keys import FileKeyProvider

    billing = env.billing
    assert billing is not None
    texts: list[str] = []
    for name, session in (("Acme", acme), ("Beta", beta)):
        async with _client(env.url, session.token) as c:
            r = await c.call_tool("get_billing_status", {})
        texts.append(_text(r))
        seen = billing.fake.received[-1].key_id if billing.fake.received else None
        step(
            f"{name}'s billing status, from {name}'s own billing API",
            not r.is_error and seen == billing.key_ids[name],
            f"upstream saw key id {seen} (the fake logs key ids, never keys); {_text(r)[:120]}",
        )
    with psycopg.connect(env.dsn("tenantgate_admin"), autocommit=True) as conn:
        audit = conn.execute("select detail::text from tenantgate.audit_log").fetchall()
    leaked = [
        n for n, k in billing.keys.items() if k.reveal() in " ".join(texts) + repr(audit)
    ]
    step("no key in any tool result or audit row", not leaked, f"checked {len(audit)} audit rows")
    keyfile = Path(os.environ["TENANTGATE_SECRET_KEYS_FILE"])
    new_kid = write_new_key(keyfile, append=True)
    os.environ["TENANTGATE_SECRET_KEY_CURRENT"] = new_kid
    with psycopg.connect(env.dsn("tenantgate_admin"), autocommit=True) as conn:
        report = customer_secrets.rotate(conn, FileKeyProvider.from_env(), new_kid)
    async with _client(env.url, acme.token) as c:
        r = await c.call_tool("get_billing_status", {})
        step(
            "key rotation mid-session changes nothing for the host",
            not r.is_error,
            f"{report.rotated} secrets re-encrypted under {new_kid}; Acme's next call answered",
        )
        billing.fake.inject("/v1/billing/status", *[Fault(status=503)] * 5)
        r = await c.call_tool("get_billing_status", {})
        step("an upstream failure is a clear tool error", r.is_error, _text(r))


async def play(env: DemoEnv, acme: OpenedSession, beta: OpenedSession) -> bool:
    """The narrated session; True when every step behaved as promised."""
    from tenantgate.mediator.approvals import Approvals
    from tenantgate.mediator.tokens import TokenVerifier

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
    await play_billing(env, acme, beta, step)
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


if __name__ == "__main__":  # `python -m tenantgate.cli.demo`, what `tenantgate demo` runs
    typer.run(demo)
