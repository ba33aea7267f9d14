"""Fixtures: a seeded database, the mediator and the authorization server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tenantgate.mediator.demo_data import seed
from tenantgate.mediator.http import HttpApp
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner
from tests.authz.stack import (
    Browser,
    Stack,
    bound_socket,
    build_server,
    make_stack_settings,
    serve,
)
from tests.pg import TestDatabase


@contextmanager
def running_stack(
    database: TestDatabase,
    es_key: ec.EllipticCurvePrivateKey,
    public_pem_file: Path,
    **authz_settings: Any,
) -> Iterator[Stack]:
    world = seed(database.superuser_dsn)
    as_sock, mcp_sock = bound_socket(), bound_socket()
    as_port, mcp_port = as_sock.getsockname()[1], mcp_sock.getsockname()[1]
    settings = make_stack_settings(as_port, mcp_port, database.session_manager_dsn,
                                   **authz_settings)
    signer = TokenSigner(
        issuer=settings.issuer, audience=settings.resource, private_key=es_key, algorithm="ES256"
    )
    server = build_server(settings, signer)
    mediator_settings = Settings(
        database_url=database.mediator_dsn,  # type: ignore[arg-type]
        issuer=settings.issuer,
        audience=settings.resource,
        authorization_server=settings.issuer,
        jwt_public_key_file=public_pem_file,
        pool_min_size=1,
        pool_max_size=4,
        rate_burst=1000,
        rate_per_second=1000.0,
    )
    with serve(server.app(), as_sock), serve(HttpApp(mediator_settings), mcp_sock):
        yield Stack(settings.resource, settings.issuer, world, server, signer, mediator_settings)


@pytest.fixture
def stack(
    database: TestDatabase, es_key: ec.EllipticCurvePrivateKey, public_pem_file: Path
) -> Iterator[Stack]:
    with running_stack(database, es_key, public_pem_file) as s:
        yield s


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()
