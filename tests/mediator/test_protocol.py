"""The HTTP transport as the MCP spec says, checked on loopback against the running mediator."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tenantgate.mediator.protocol import SUPPORTED_VERSIONS
from tests.mediator.conftest import OpenFn
from tests.mediator.test_http import mcp_client

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "0"},
}
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def post(url: str, token: str, body: Any, **headers: str) -> httpx.Response:
    h = {**JSON_HEADERS, "Authorization": f"Bearer {token}"}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    return httpx.post(url, content=httpx.Request("POST", url, json=body).content, headers=h)


def modern(url: str, token: str, method: str, params: dict[str, Any], **headers: str) -> Any:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": ENVELOPE}}
    h = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if method == "tools/call":
        h["Mcp-Name"] = params["name"]
    h.update(headers)
    return post(url, token, body, **h)


def raw_request(url: str, lines: list[str], body: bytes) -> int:
    """Send exactly these header lines (duplicates included); the status code answered."""
    parts = urlsplit(url)
    head = [f"POST {parts.path} HTTP/1.1", *lines, f"Content-Length: {len(body)}", "", ""]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall("\r\n".join(head).encode() + body)
        answer = sock.recv(4096)
    return int(answer.split(b" ", 2)[1])


PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def test_an_unknown_protocol_version_is_400_and_names_the_supported_ones(
    http_url: str, open_session: OpenFn
) -> None:
    r = post(http_url, open_session().token, PING, MCP_Protocol_Version="1999-01-01")
    assert r.status_code == 400
    assert r.json()["id"] == 1  # the request's id, not null
    assert r.json()["error"]["code"] == -32022
    assert r.json()["error"]["data"]["requested"] == "1999-01-01"
    assert r.json()["error"]["data"]["supported"] == list(SUPPORTED_VERSIONS)


def test_a_body_that_is_not_json_by_content_type_is_415(
    http_url: str, open_session: OpenFn
) -> None:
    r = post(http_url, open_session().token, PING, Content_Type="text/plain")
    assert r.status_code == 415
    h = {"Authorization": f"Bearer {open_session().token}", "Accept": "application/json"}
    assert (
        httpx.post(
            http_url, content=b'{"jsonrpc":"2.0","id":1,"method":"ping"}', headers=h
        ).status_code
        == 415
    )


@pytest.mark.parametrize("accept", ["", "text/event-stream", "text/html"])
def test_a_client_that_does_not_accept_json_is_406(
    http_url: str, open_session: OpenFn, accept: str
) -> None:
    assert post(http_url, open_session().token, PING, Accept=accept).status_code == 406


@pytest.mark.parametrize("name", ["Host", "Origin"])
def test_a_duplicated_host_or_origin_header_is_refused(
    http_url: str, open_session: OpenFn, name: str
) -> None:
    host = urlsplit(http_url).netloc
    value = host if name == "Host" else f"http://{host}"
    token = open_session().token
    base = [
        f"Host: {host}",
        "Content-Type: application/json",
        "Accept: application/json",
        f"Authorization: Bearer {token}",
    ]
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    assert raw_request(http_url, base, body) == 200
    assert raw_request(http_url, [*base, f"{name}: {value}", f"{name}: {value}"], body) == 400


@pytest.mark.parametrize("bad_id", [None, {"a": 1}, [1], 1.5, True])
def test_a_request_id_must_be_a_string_or_an_integer(
    http_url: str, open_session: OpenFn, bad_id: Any
) -> None:
    r = post(http_url, open_session().token, {**PING, "id": bad_id})
    assert r.status_code == 400
    assert r.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "invalid request: id must be a string or integer"},
    }
    for good in ("abc", 0, -5):
        assert post(http_url, open_session().token, {**PING, "id": good}).json()["id"] == good


def test_a_batch_under_2025_03_26_answers_each_request_in_one_array(
    http_url: str, open_session: OpenFn
) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "account_health"}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
        {"jsonrpc": "2.0", "id": 4, "method": "initialize", "params": {}},
    ]
    for headers in ({}, {"MCP_Protocol_Version": "2025-03-26"}):
        r = post(http_url, open_session().token, batch, **headers)
        assert r.status_code == 200
        replies = {m["id"]: m for m in r.json()}
        assert set(replies) == {"a", 2, 3, 4}
        assert replies["a"]["result"] == {}
        assert replies[2]["result"]["isError"] is False
        assert replies[3]["error"]["code"] == -32601
        assert replies[4]["error"]["code"] == -32600  # initialize may not be batched
    only_notes = [{"jsonrpc": "2.0", "method": "notifications/initialized"}]
    assert post(http_url, open_session().token, only_notes).status_code == 202


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", MODERN])
def test_a_batch_under_a_revision_without_batches_is_refused(
    http_url: str, open_session: OpenFn, version: str
) -> None:
    r = post(http_url, open_session().token, [PING], MCP_Protocol_Version=version)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32600


def test_under_2026_07_28_an_mcp_name_that_differs_from_the_body_runs_nothing(
    http_url: str, open_session: OpenFn, database: Any
) -> None:
    token = open_session().token

    def audit_rows() -> int:
        with database.connect() as conn:
            row = conn.execute("select count(*) from tenantgate.audit_log").fetchone()
        return int(row[0])

    before = audit_rows()
    r = modern(http_url, token, "tools/call", {"name": "list_tickets"}, Mcp_Name="account_health")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32020
    assert audit_rows() == before  # nothing ran, nothing was charged
    ok = modern(http_url, token, "tools/call", {"name": "list_tickets", "arguments": {}})
    assert ok.status_code == 200
    assert ok.json()["result"]["isError"] is False
    assert ok.json()["result"]["resultType"] == "complete"


def test_under_2026_07_28_an_mcp_method_that_differs_from_the_body_is_400(
    http_url: str, open_session: OpenFn
) -> None:
    r = modern(http_url, open_session().token, "tools/list", {}, Mcp_Method="ping")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32020
    missing = modern(http_url, open_session().token, "tools/list", {})
    assert missing.status_code == 200


def test_under_2026_07_28_a_request_without_the_envelope_is_400(
    http_url: str, open_session: OpenFn
) -> None:
    h = {"MCP_Protocol_Version": MODERN, "Mcp_Method": "tools/list"}
    r = post(
        http_url, open_session().token, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, **h
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32602


def test_under_2026_07_28_unknown_methods_are_404_and_initialize_is_unknown(
    http_url: str, open_session: OpenFn
) -> None:
    token = open_session().token
    for method in ("resources/list", "initialize", "ping"):
        r = modern(http_url, token, method, {})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == -32601
    old = post(
        http_url,
        token,
        {"jsonrpc": "2.0", "id": 1, "method": "resources/list"},
        MCP_Protocol_Version="2025-11-25",
    )
    assert old.status_code == 200
    assert old.json()["error"]["code"] == -32601


def test_server_discover_offers_2026_07_28(http_url: str, open_session: OpenFn) -> None:
    r = modern(http_url, open_session().token, "server/discover", {})
    assert r.status_code == 200
    result = r.json()["result"]
    assert result["supportedVersions"] == list(SUPPORTED_VERSIONS)
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "tenantgate"
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["resultType"] == "complete"


@pytest.mark.anyio
async def test_the_sdk_client_in_auto_mode_adopts_2026_07_28_through_discover(
    http_url: str, open_session: OpenFn
) -> None:
    async with mcp_client(http_url, open_session().token, "auto") as client:
        assert client.protocol_version == MODERN
        r = await client.call_tool("account_health", {})
    assert not r.is_error


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18", "2025-11-25"])
def test_each_handshake_revision_negotiates_and_lists_tools(
    http_url: str, open_session: OpenFn, version: str
) -> None:
    token = open_session().token
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    r = post(http_url, token, init)
    assert r.json()["result"]["protocolVersion"] == version
    headers = {} if version == "2025-03-26" else {"MCP_Protocol_Version": version}
    listed = post(http_url, token, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, **headers)
    assert listed.status_code == 200
    assert "list_tickets" in {t["name"] for t in listed.json()["result"]["tools"]}


def test_a_posted_response_or_notification_is_accepted_with_202(
    http_url: str, open_session: OpenFn
) -> None:
    token = open_session().token
    assert post(http_url, token, {"jsonrpc": "2.0", "id": 9, "result": {}}).status_code == 202
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert post(http_url, token, note, MCP_Protocol_Version="2025-11-25").status_code == 202


def test_under_2026_07_28_whitespace_around_a_routing_header_value_is_ignored(
    http_url: str, open_session: OpenFn
) -> None:
    token = open_session().token
    body = orjson_body(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "account_health", "arguments": {}, "_meta": ENVELOPE},
        }
    )
    host = urlsplit(http_url).netloc
    lines = [
        f"Host: {host}",
        "Content-Type: application/json",
        "Accept: application/json",
        f"Authorization: Bearer {token}",
        f"MCP-Protocol-Version: {MODERN}",
        "Mcp-Method: tools/call",
        "Mcp-Name:   account_health  ",
    ]
    assert raw_request(http_url, lines, body) == 200
    lines[-1] = "Mcp-Name: list_tickets"
    assert raw_request(http_url, lines, body) == 400


def orjson_body(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()
