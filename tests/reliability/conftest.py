"""Reliability fixtures: a seeded world, a gate on any DSN, PgBouncer; `slow` runs only with -m."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tenantgate.mediator.db import make_pool
from tenantgate.mediator.demo_data import ALL_SCOPES, World, seed
from tenantgate.mediator.gate import Gate
from tenantgate.mediator.sessions import OpenedSession, SessionManager
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import Claims, TokenSigner, TokenVerifier
from tests.pg import TestDatabase

ISSUER = "https://backend.reliability.test"
AUDIENCE = "http://127.0.0.1:8765/mcp"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long runs (marked slow) only when asked for with `-m slow`."""
    if "slow" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def rel_signer(es_key: ec.EllipticCurvePrivateKey) -> TokenSigner:
    return TokenSigner(issuer=ISSUER, audience=AUDIENCE, private_key=es_key, algorithm="ES256")


def make_settings(dsn: str, public_pem: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwt_public_key_file": public_pem,
        "pool_min_size": 1,
        "pool_max_size": 8,
    }
    values.update(extra)
    return Settings(**values)


async def start_gate(settings: Settings) -> Gate:
    pool = make_pool(settings)
    await pool.open(wait=True)
    return Gate(pool, settings)


class Sessions:
    """Opens sessions in a seeded world and verifies their tokens, as the mediator would."""

    def __init__(self, world: World, manager: SessionManager, verifier: TokenVerifier) -> None:
        self.world, self.manager, self.verifier = world, manager, verifier

    def open(
        self, customer: str = "Acme", org: str = "Northwind", scopes: list[str] | None = None
    ) -> tuple[OpenedSession, Claims]:
        o = self.world.orgs[org]
        opened = self.manager.open(
            org_id=o.org_id,
            operator_id=o.operator_id,
            connector_id=o.connector_id,
            customer_id=o.customers[customer].customer_id,
            scopes=ALL_SCOPES if scopes is None else scopes,
            ttl_seconds=3600,
        )
        return opened, self.verifier.verify(opened.token)


@pytest.fixture
def world(database: TestDatabase) -> World:
    # rate limits live in the catalog now: generous ones, these tests are not about them
    return seed(database.superuser_dsn, credits=10_000_000, rate_burst=100_000,
                rate_per_second=100_000.0)


@pytest.fixture
def sessions(
    database: TestDatabase, world: World, rel_signer: TokenSigner, public_pem_file: Path
) -> Sessions:
    verifier = TokenVerifier(make_settings(database.mediator_dsn, public_pem_file))
    return Sessions(world, SessionManager(database.session_manager_dsn, rel_signer), verifier)


@pytest.fixture
async def gate(database: TestDatabase, world: World, public_pem_file: Path) -> AsyncIterator[Gate]:
    g = await start_gate(make_settings(database.mediator_dsn, public_pem_file))
    try:
        yield g
    finally:
        await g.pool.close()


GateFactory = Callable[..., Gate]


def customer_of(world: World, claims: Claims) -> str:
    """The demo customer name a verified session belongs to."""
    for org in world.orgs.values():
        for name, customer in org.customers.items():
            if customer.customer_id == claims.customer_id:
                return name
    raise KeyError(claims.customer_id)
