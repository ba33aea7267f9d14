"""Fixtures for the mediator: a seeded database, run-time keys, a gate on a real pool."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tenantgate.mediator.db import make_pool
from tenantgate.mediator.demo_data import ALL_SCOPES, World, seed
from tenantgate.mediator.gate import Gate
from tenantgate.mediator.sessions import OpenedSession, SessionManager
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner, TokenVerifier
from tests.pg import TestDatabase

ISSUER = "https://backend.test"
AUDIENCE = "http://127.0.0.1:8765/mcp"


@pytest.fixture
def world(database: TestDatabase) -> World:
    # generous limits: tests that are about rate limits set their own on the catalog row
    return seed(database.superuser_dsn, rate_burst=1000, rate_per_second=1000.0)


@pytest.fixture
def settings(database: TestDatabase, public_pem_file: Path) -> Settings:
    return Settings(
        database_url=database.mediator_dsn,
        issuer=ISSUER,
        audience=AUDIENCE,
        jwt_public_key_file=public_pem_file,
        pool_min_size=1,
        pool_max_size=4,
    )


@pytest.fixture
def signer(es_key: ec.EllipticCurvePrivateKey) -> TokenSigner:
    return TokenSigner(issuer=ISSUER, audience=AUDIENCE, private_key=es_key, algorithm="ES256")


@pytest.fixture
def verifier(settings: Settings) -> TokenVerifier:
    return TokenVerifier(settings)


@pytest.fixture
def sessions(database: TestDatabase, signer: TokenSigner) -> SessionManager:
    return SessionManager(database.session_manager_dsn, signer)


OpenFn = Callable[..., OpenedSession]


@pytest.fixture
def open_session(world: World, sessions: SessionManager) -> OpenFn:
    """open_session(customer="Acme", org="Northwind", scopes=[...]) -> OpenedSession."""

    def _open(
        customer: str = "Acme",
        org: str = "Northwind",
        scopes: list[str] | None = None,
        ttl_seconds: int = 900,
        operator: str = "csm",
    ) -> OpenedSession:
        o = world.orgs[org]
        return sessions.open(
            org_id=o.org_id,
            operator_id=o.operator_id if operator == "csm" else o.second_operator_id,
            connector_id=o.connector_id,
            customer_id=o.customers[customer].customer_id,
            scopes=ALL_SCOPES if scopes is None else scopes,
            ttl_seconds=ttl_seconds,
        )

    return _open


@pytest.fixture
async def gate(settings: Settings, world: World) -> AsyncIterator[Gate]:
    pool = make_pool(settings)
    await pool.open(wait=True)
    try:
        yield Gate(pool, settings)
    finally:
        await pool.close()


def tool_names(tools: list[dict[str, Any]]) -> set[str]:
    return {t["name"] for t in tools}


@pytest.fixture
def capture_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level("DEBUG")
    return caplog


def serve_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `tenantgate serve` child process for these settings: this process's
    own, minus any TENANTGATE_ or Prometheus variable, plus the settings (and `extra`)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TENANTGATE_", "PROMETHEUS_", "prometheus_"))
    }
    env.update(
        {
            "TENANTGATE_DATABASE_URL": settings.database_url.get_secret_value(),
            "TENANTGATE_ISSUER": settings.issuer,
            "TENANTGATE_AUDIENCE": settings.audience,
            "TENANTGATE_JWT_PUBLIC_KEY_FILE": str(settings.jwt_public_key_file),
            "TENANTGATE_POOL_MIN_SIZE": "1",
            **extra,
        }
    )
    return env


@pytest.fixture
def http_url(settings: Settings) -> Iterator[str]:
    """The mediator's HTTP app served by uvicorn on a free loopback port, in a thread."""
    import socket
    import threading
    import time as _time

    import uvicorn

    from tenantgate.mediator.http import HttpApp
    from tenantgate.mediator.http_wire import HTTP_PROTOCOL

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        HttpApp(settings),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        loop="asyncio",
        http=HTTP_PROTOCOL,  # what serve_http runs
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = _time.monotonic() + 20
    while not server.started:
        if _time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        _time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def apply_extra_tools(database: TestDatabase, tools_yaml: str) -> None:
    """Apply the demo tools file plus `tools_yaml`, as a DBA would (`tenantgate tools apply`)."""
    from tenantgate.cli.demo_schema import DEMO_TOOLS
    from tenantgate.cli.toolfile import compile as toolfile_compile
    from tenantgate.cli.toolfile.spec import load, loads

    with database.connect(autocommit=True) as conn:
        toolfile_compile.apply(conn, [load(DEMO_TOOLS), loads(tools_yaml.encode(), "<test>")])


def set_catalog(database: TestDatabase, org_id: str, tool: str, **columns: Any) -> None:
    """Change one catalog row as the admin does (rate limit, approval policy, cost ...)."""
    from psycopg import sql

    with database.connect("tenantgate_admin", autocommit=True) as conn:
        conn.execute(
            sql.SQL("update tenantgate.tools set {} where org_id = %s and tool_name = %s").format(
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v))
                    for k, v in columns.items()
                )
            ),
            (org_id, tool),
        )
