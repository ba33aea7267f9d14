"""stdio logs like HTTP: one JSON line per request on stderr (never stdout, which carries the
protocol), through the SDK's real stdio client, with no token, secret or argument value."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from tenantgate.mediator.demo_data import World
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner, TokenVerifier
from tests.mediator.conftest import OpenFn
from tests.mediator.test_stdio import params, token_lasting

pytestmark = pytest.mark.anyio
CANARY = "argument-value-canary-91d4"


def request_lines(stderr: str) -> list[dict[str, Any]]:
    lines = []
    for line in stderr.splitlines():
        doc = json.loads(line)  # every stderr line is JSON: the default format
        if doc.get("logger") == "tenantgate.access":
            lines.append(doc["request"])
    return lines


async def test_stdio_writes_one_json_line_per_request_to_stderr_and_nothing_secret(
    settings: Settings, open_session: OpenFn, world: World
) -> None:
    s = open_session("Acme")
    secret = TokenVerifier(settings).verify(s.token).session_secret
    with tempfile.TemporaryFile("w+") as errlog:
        async with Client(stdio_client(params(settings, s.token), errlog=errlog),
                          mode="legacy", cache=None) as client:
            await client.list_tools()
            assert not (await client.call_tool("account_health", {})).is_error
            found = await client.call_tool("search_tickets", {"query": CANARY})
            assert not found.is_error
            refused = await client.call_tool("list_tickets", {"status": CANARY})
            assert refused.is_error
            assert (await client.call_tool("no_such_tool", {CANARY: CANARY})).is_error
        errlog.seek(0)
        stderr = errlog.read()
    for secret_text in (s.token, secret, CANARY):
        assert secret_text not in stderr
    lines = request_lines(stderr)
    assert [(x["method"], x["tool"], x["decision"], x["status"]) for x in lines] == [
        ("tools/list", None, None, 200),
        ("tools/call", "account_health", "allowed", 200),
        ("tools/call", "search_tickets", "allowed", 200),
        ("tools/call", "list_tickets", "invalid_arguments", 200),
        ("tools/call", "other", "denied", 200),  # an invented name never reaches a log line
    ]
    org = str(world.northwind.org_id)
    assert all(x["transport"] == "stdio" and x["org"] == org for x in lines)
    assert all(x["duration_ms"] > 0 for x in lines)
    ids = [x["request_id"] for x in lines]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 for i in ids)


async def test_stdio_logs_an_expired_token_as_401_token_invalid(
    settings: Settings, open_session: OpenFn, signer: TokenSigner
) -> None:
    expired = token_lasting(settings, signer, open_session("Acme").token, -120)
    with tempfile.TemporaryFile("w+") as errlog:
        async with Client(stdio_client(params(settings, expired), errlog=errlog),
                          mode="legacy", cache=None) as client:
            assert (await client.call_tool("account_health", {})).is_error
        errlog.seek(0)
        stderr = errlog.read()
    assert expired not in stderr
    (line,) = request_lines(stderr)
    assert (line["status"], line["decision"], line["org"]) == (401, "token_invalid", None)
