"""The authorization code flow by hand: discovery, registration, login, consent, tokens."""

from __future__ import annotations

import httpx

from tests.authz.helpers import (
    REDIRECT,
    authorize_url,
    get_code,
    redeem,
    refused,
    register,
    rpc,
    token,
    works,
)
from tests.authz.stack import Browser, Stack, query


def test_mediator_metadata_names_the_authorization_server_whose_metadata_names_itself(
    stack: Stack,
) -> None:
    base = stack.mcp_url.rsplit("/mcp", 1)[0]
    prm = httpx.get(f"{base}/.well-known/oauth-protected-resource/mcp").json()
    assert prm["resource"] == stack.mcp_url
    assert prm["authorization_servers"] == [stack.as_url]
    meta = httpx.get(f"{stack.as_url}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == stack.as_url
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["client_id_metadata_document_supported"] is True


def test_consent_gives_a_code_whose_token_lists_the_chosen_customers_tools(
    stack: Stack, browser: Browser
) -> None:
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id, scopes=["read:tickets"])
    r = redeem(stack, client_id, code, verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read:tickets"
    assert 0 < body["expires_in"] <= 3600
    listed = rpc(stack, body["access_token"]).json()
    names = {t["name"] for t in listed["result"]["tools"]}
    assert names == {"list_tickets", "search_tickets"}
    called = rpc(stack, body["access_token"], "tools/call",
                 {"name": "list_tickets", "arguments": {"status": "open"}}).json()
    items = called["result"]["structuredContent"]["items"]
    assert [t["subject"] for t in items] == ["Acme: login fails"]


def test_authorization_response_carries_iss_and_state(stack: Stack, browser: Browser) -> None:
    client_id = register(stack)
    url, _ = authorize_url(stack, client_id, state="xyz")
    q = query(browser.consent(url, REDIRECT))
    assert q["iss"] == stack.as_url
    assert q["state"] == "xyz"


def test_refresh_rotates_and_a_used_refresh_token_ends_the_session(
    stack: Stack, browser: Browser
) -> None:
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    first = redeem(stack, client_id, code, verifier).json()
    second = token(stack, grant_type="refresh_token", refresh_token=first["refresh_token"],
                   client_id=client_id)
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert works(stack, second.json()["access_token"])
    replay = token(stack, grant_type="refresh_token", refresh_token=first["refresh_token"],
                   client_id=client_id)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert refused(stack, second.json()["access_token"])


def test_refresh_token_is_bound_to_its_client(stack: Stack, browser: Browser) -> None:
    client_id, other = register(stack), register(stack)
    code, verifier = get_code(stack, browser, client_id)
    first = redeem(stack, client_id, code, verifier).json()
    r = token(stack, grant_type="refresh_token", refresh_token=first["refresh_token"],
              client_id=other)
    assert r.status_code == 400


def test_revocation_ends_the_session(stack: Stack, browser: Browser) -> None:
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    body = redeem(stack, client_id, code, verifier).json()
    assert works(stack, body["access_token"])
    r = httpx.post(f"{stack.as_url}/revoke",
                   data={"token": body["refresh_token"], "client_id": client_id})
    assert r.status_code == 200
    assert refused(stack, body["access_token"])
    refreshed = token(stack, grant_type="refresh_token", refresh_token=body["refresh_token"],
                      client_id=client_id)
    assert refreshed.status_code == 400


def test_revoking_the_access_token_ends_the_session_but_only_for_its_own_client(
    stack: Stack, browser: Browser
) -> None:
    client_id, other = register(stack), register(stack)
    code, verifier = get_code(stack, browser, client_id)
    body = redeem(stack, client_id, code, verifier).json()
    r = httpx.post(f"{stack.as_url}/revoke", data={"token": body["access_token"],
                                                    "client_id": other})
    assert r.status_code == 200
    assert works(stack, body["access_token"])
    httpx.post(f"{stack.as_url}/revoke", data={"token": body["access_token"],
                                               "client_id": client_id})
    assert refused(stack, body["access_token"])
