"""Each way the flow must refuse, from the attacker's seat: one test per promise."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tenantgate.authz.cimd import ClientDocumentError, DocumentFetcher, address_allowed
from tests.authz.helpers import (
    REDIRECT,
    authorize_url,
    get_code,
    redeem,
    refused,
    register,
    token,
    works,
)
from tests.authz.stack import Browser, Stack, query
from tests.pg import TestDatabase


def _no_redirect_page(r: httpx.Response) -> None:
    assert r.status_code == 400
    assert "location" not in r.headers
    assert "text/html" in r.headers["content-type"]


def _sessions(db: TestDatabase) -> int:
    with db.connect() as conn:
        row = conn.execute("select count(*) from tenantgate.sessions").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("method", [None, "plain"])
def test_authorize_without_pkce_s256_is_refused(stack: Stack, method: str | None) -> None:
    client_id = register(stack)
    overrides: dict[str, str | None] = {"code_challenge_method": method}
    if method is None:
        overrides["code_challenge"] = None
    url, _ = authorize_url(stack, client_id, **overrides)
    r = httpx.get(url)
    assert r.status_code == 303
    q = query(r.headers["location"])
    assert r.headers["location"].startswith(REDIRECT)
    assert q["error"] == "invalid_request"
    assert q["iss"] == stack.as_url


def test_token_without_the_right_verifier_is_refused_and_ends_the_session(
    stack: Stack, browser: Browser
) -> None:
    client_id = register(stack)
    code, _ = get_code(stack, browser, client_id)
    r = redeem(stack, client_id, code, "x" * 64)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_redirect_uri_not_registered_is_a_page_never_a_redirect(stack: Stack) -> None:
    client_id = register(stack)
    url, _ = authorize_url(stack, client_id, redirect_uri="https://evil.example/cb")
    _no_redirect_page(httpx.get(url))


def test_unknown_client_is_a_page_never_a_redirect(stack: Stack) -> None:
    url, _ = authorize_url(stack, "tgc_unknown_client_id_0000",
                           redirect_uri="https://evil.example/cb")
    _no_redirect_page(httpx.get(url))


def test_token_request_with_another_redirect_uri_is_refused(
    stack: Stack, browser: Browser
) -> None:
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    r = redeem(stack, client_id, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert r.status_code == 400


def test_code_replay_is_refused_and_kills_the_tokens_of_the_first_redemption(
    stack: Stack, browser: Browser
) -> None:
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    first = redeem(stack, client_id, code, verifier).json()
    assert works(stack, first["access_token"])
    again = redeem(stack, client_id, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert refused(stack, first["access_token"])
    r = token(stack, grant_type="refresh_token", refresh_token=first["refresh_token"],
              client_id=client_id)
    assert r.status_code == 400


def test_authorize_for_another_resource_is_refused(stack: Stack) -> None:
    client_id = register(stack)
    url, _ = authorize_url(stack, client_id, resource="https://other.example/mcp")
    r = httpx.get(url)
    assert query(r.headers["location"])["error"] == "invalid_target"


def test_code_redeemed_for_another_resource_is_refused(stack: Stack, browser: Browser) -> None:
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    r = redeem(stack, client_id, code, verifier, resource="https://other.example/mcp")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_target"


def test_token_for_another_audience_is_refused_by_the_mediator(
    stack: Stack, browser: Browser
) -> None:
    from tenantgate.mediator.tokens import TokenVerifier

    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    good = redeem(stack, client_id, code, verifier).json()["access_token"]
    claims = TokenVerifier(stack.mediator_settings).verify(good)
    other = type(stack.signer)(issuer=stack.as_url, audience="https://other.example/mcp",
                               private_key=stack.signer._key, algorithm="ES256")
    forged = other.mint(
        operator_id=claims.operator_id, org_id=claims.org_id, connector_id=claims.connector_id,
        customer_id=claims.customer_id, session_id=claims.session_id,
        session_secret=claims.session_secret, scopes=sorted(claims.scopes), lifetime_seconds=300,
    )
    r = httpx.post(stack.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_consent_post_with_a_wrong_csrf_token_opens_nothing(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    client_id = register(stack)
    url, _ = authorize_url(stack, client_id)
    back = browser.consent(url, REDIRECT, tamper={"csrf": "forged"})
    assert back.startswith("page:403:")
    assert _sessions(database) == 0


def test_consent_post_from_another_browser_without_the_login_cookie_opens_nothing(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    r = httpx.post(f"{stack.as_url}/consent",
                   data={"csrf": "x", "customer": "y", "decision": "allow"})
    assert r.status_code == 400
    assert _sessions(database) == 0


def test_consent_page_cannot_be_framed(stack: Stack) -> None:
    r = httpx.get(f"{stack.as_url}/approvals")
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert "default-src 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"


def test_operator_of_org_a_cannot_consent_to_a_customer_of_org_b(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    client_id = register(stack)
    url, _ = authorize_url(stack, client_id)
    gamma = stack.world.globex.customers["Gamma"].customer_id
    back = browser.consent(url, REDIRECT, tamper={"customer": gamma})
    assert back.startswith("page:404:")
    assert _sessions(database) == 0


def test_disabled_operator_cannot_log_in(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    with database.connect() as conn:
        conn.execute("update tenantgate.operators set status = 'disabled'"
                     " where email = 'csm@northwind.example'")
    client_id = register(stack)
    url, _ = authorize_url(stack, client_id)
    back = browser.consent(url, REDIRECT)
    assert back.startswith("page:403:") or "No active operator" in back
    assert _sessions(database) == 0


def test_paused_customer_at_consent_gets_no_session(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    with database.connect() as conn:
        conn.execute("update tenantgate.customer_accounts set status = 'paused'"
                     " where name = 'Acme'")
    client_id = register(stack)
    url, _ = authorize_url(stack, client_id)
    acme = stack.world.northwind.customers["Acme"].customer_id
    back = browser.consent(url, REDIRECT, tamper={"customer": acme})
    assert back.startswith("page:404:")
    assert _sessions(database) == 0


def test_paused_customer_after_consent_stops_tokens_and_refresh(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    body = redeem(stack, client_id, code, verifier).json()
    assert works(stack, body["access_token"])
    with database.connect() as conn:
        conn.execute("update tenantgate.customer_accounts set status = 'paused'"
                     " where name = 'Acme'")
    assert refused(stack, body["access_token"])
    r = token(stack, grant_type="refresh_token", refresh_token=body["refresh_token"],
              client_id=client_id)
    assert r.status_code == 400


@pytest.mark.parametrize(
    "uris",
    [["http://evil.example/cb"], ["myapp://cb"], ["https://ok.example/cb#frag"], []],
)
def test_registration_refuses_redirect_uris_outside_the_rules(
    stack: Stack, uris: list[str]
) -> None:
    r = httpx.post(f"{stack.as_url}/register", json={"redirect_uris": uris})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.169.254", "::1", "fe80::1",
                "::ffff:10.0.0.1", "100.64.0.1", "0.0.0.0"],  # noqa: S104
)
def test_private_loopback_and_link_local_addresses_are_not_fetched(address: str) -> None:
    assert not address_allowed(address, allow_loopback=False)


def test_public_address_may_be_fetched() -> None:
    assert address_allowed("93.184.215.14", allow_loopback=False)


@pytest.mark.parametrize(
    "client_id", ["https://localhost/client.json", "https://127.0.0.1/client.json",
                  "https://10.0.0.7/client.json", "https://[::1]/client.json"],
)
def test_client_id_document_on_a_private_address_is_refused_before_connecting(
    client_id: str,
) -> None:
    fetcher = DocumentFetcher(timeout=2, max_bytes=4096, cache_seconds=0)
    with pytest.raises(ClientDocumentError, match="private or reserved"):
        asyncio.run(fetcher.get(client_id))


def test_authorize_with_a_client_id_document_on_a_private_address_is_a_page(
    stack: Stack,
) -> None:
    url, _ = authorize_url(stack, "https://127.0.0.1/client.json")
    _no_redirect_page(httpx.get(url))


def test_registration_floods_from_one_address_get_429(stack: Stack) -> None:
    answers = [
        httpx.post(f"{stack.as_url}/register", json={"redirect_uris": [REDIRECT]}).status_code
        for _ in range(12)
    ]
    assert answers.count(201) >= 1
    assert answers[-1] == 429
