"""Token exchange (RFC 8693), the mediator's RFC 6750 challenges, and the IdP's key rotation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tenantgate.mediator.discovery import Challenges
from tenantgate.mediator.http import HttpApp
from tenantgate.mediator.settings import Settings
from tests.authz.conftest import running_stack
from tests.authz.helpers import get_code, redeem, register, token, works
from tests.authz.stack import Browser, Stack, bound_socket, serve
from tests.pg import TestDatabase

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


@pytest.fixture
def xstack(
    database: TestDatabase, es_key: ec.EllipticCurvePrivateKey, public_pem_file: Path
) -> Iterator[Stack]:
    with running_stack(database, es_key, public_pem_file,
                       exchange_audiences=["product-backend"]) as s:
        yield s


def _exchange(stack: Stack, subject: str, customer: str, **extra: str) -> httpx.Response:
    return token(stack, grant_type=EXCHANGE, subject_token=subject,
                 subject_token_type=ID_TOKEN, customer_id=customer,
                 resource=stack.mcp_url, **extra)


def test_backend_exchanges_an_idp_token_and_a_customer_for_a_session_token(
    xstack: Stack,
) -> None:
    assert xstack.server.dev_idp is not None
    id_token = xstack.server.dev_idp.id_token("csm@northwind.example", "product-backend")
    acme = xstack.world.northwind.customers["Acme"].customer_id
    r = _exchange(xstack, id_token, acme, scope="read:tickets")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["scope"] == "read:tickets"
    assert "refresh_token" not in body
    assert body["access_token"] != id_token
    assert works(xstack, body["access_token"])


def test_exchange_refuses_a_customer_of_another_org(xstack: Stack) -> None:
    assert xstack.server.dev_idp is not None
    id_token = xstack.server.dev_idp.id_token("csm@northwind.example", "product-backend")
    gamma = xstack.world.globex.customers["Gamma"].customer_id
    assert _exchange(xstack, id_token, gamma).status_code == 400


def test_exchange_refuses_an_idp_token_minted_for_another_audience(xstack: Stack) -> None:
    assert xstack.server.dev_idp is not None
    id_token = xstack.server.dev_idp.id_token("csm@northwind.example", "some-other-app")
    acme = xstack.world.northwind.customers["Acme"].customer_id
    r = _exchange(xstack, id_token, acme)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_exchange_is_not_offered_without_configured_audiences(stack: Stack) -> None:
    assert stack.server.dev_idp is not None
    id_token = stack.server.dev_idp.id_token("csm@northwind.example", "product-backend")
    acme = stack.world.northwind.customers["Acme"].customer_id
    assert _exchange(stack, id_token, acme).json()["error"] == "unsupported_grant_type"


def test_idp_key_rotation_is_picked_up_through_a_jwks_refetch(xstack: Stack) -> None:
    idp = xstack.server.dev_idp
    assert idp is not None
    acme = xstack.world.northwind.customers["Acme"].customer_id
    first = idp.id_token("csm@northwind.example", "product-backend")
    assert _exchange(xstack, first, acme).status_code == 200
    fetches = xstack.server.oidc.jwks_fetches
    idp.rotate_key()
    xstack.server.oidc._keys_fetched = 0.0  # as if the refetch pause had passed
    second = idp.id_token("csm@northwind.example", "product-backend")
    assert _exchange(xstack, second, acme).status_code == 200
    assert xstack.server.oidc.jwks_fetches == fetches + 1


def test_no_credentials_get_a_challenge_without_an_error_code(stack: Stack) -> None:
    r = httpx.post(stack.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer resource_metadata=")
    assert "error=" not in challenge


def test_a_refused_token_gets_invalid_token(stack: Stack) -> None:
    r = httpx.post(stack.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_a_token_without_a_required_scope_is_403_insufficient_scope_naming_it(
    stack: Stack,
) -> None:
    settings = stack.mediator_settings.model_copy(update={"required_scopes": ["read:everything"]})
    sock = bound_socket()
    port = sock.getsockname()[1]
    # same audience as the stack, another port: the token is valid, its scopes are not enough
    b = Browser()
    client_id = register(stack)
    code, verifier = get_code(stack, b, client_id)
    access = redeem(stack, client_id, code, verifier).json()["access_token"]
    b.close()
    with serve(HttpApp(settings), sock):
        r = httpx.post(f"http://127.0.0.1:{port}/mcp",
                       json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                       headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="read:everything"' in challenge


def test_metadata_omits_an_authorization_server_that_is_no_url() -> None:
    from tenantgate.mediator.discovery import authorization_servers

    assert authorization_servers(Settings(issuer="tenantgate-demo")) == []
    assert authorization_servers(Settings(issuer="https://as.example")) == ["https://as.example"]
    assert Challenges.lacks_scope(frozenset({"a"}), frozenset({"b"}))


def test_the_challenge_names_the_scopes_the_mediator_offers() -> None:
    settings = Settings(audience="http://127.0.0.1:1/mcp", scopes_supported=["read:tickets"])
    c = Challenges(settings)
    assert c.for_request(None) == (
        b'Bearer resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp"'
        b', scope="read:tickets"'
    )
    assert b'error="invalid_token"' in c.for_request(b"Bearer x")


def test_an_authorization_server_setting_that_is_no_url_stops_the_mediator_at_start() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must be the authorization server's URL"):
        Settings(authorization_server="tenantgate-demo")
