"""The MCP SDK's OAuth client provider, with a scripted person in place of the browser."""

from __future__ import annotations

import anyio
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from tests.authz.stack import Browser, query

REDIRECT = "http://127.0.0.1:9/oauth/callback"


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Person:
    """Plays the human: opens the authorization URL, logs in, picks Acme, allows."""

    def __init__(self) -> None:
        self.browser = Browser()
        self.back: str = ""
        self.visits = 0

    async def redirect_handler(self, url: str) -> None:
        self.visits += 1
        self.back = await anyio.to_thread.run_sync(
            lambda: self.browser.consent(url, REDIRECT, customer="Acme")
        )

    def close(self) -> None:
        self.browser.close()

    async def callback_handler(self) -> AuthorizationCodeResult:
        q = query(self.back)
        assert "code" in q, self.back[:300]
        return AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))


def provider_for(mcp_url: str, person: Person, storage: MemoryStorage,
                 metadata_url: str | None = None) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="sdk test host",
            redirect_uris=[REDIRECT],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=person.redirect_handler,
        callback_handler=person.callback_handler,
        client_metadata_url=metadata_url,
    )
