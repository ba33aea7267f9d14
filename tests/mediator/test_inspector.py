"""A real non-Python MCP client: @modelcontextprotocol/inspector's CLI (node) against HTTP.

Runs when TENANTGATE_INSPECTOR_DIR names a folder where `npm install
@modelcontextprotocol/inspector@2` was run (it works on node 20); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.mediator.conftest import OpenFn

INSPECTOR_DIR = os.environ.get("TENANTGATE_INSPECTOR_DIR", "")
pytestmark = pytest.mark.skipif(
    not (INSPECTOR_DIR and (Path(INSPECTOR_DIR) / "node_modules/.bin/mcp-inspector").exists()),
    reason="TENANTGATE_INSPECTOR_DIR: a folder with @modelcontextprotocol/inspector installed",
)


def inspector(url: str, token: str, *args: str) -> dict[str, object]:
    cmd = [
        "npx",
        "--no-install",
        "@modelcontextprotocol/inspector",
        "--cli",
        url,
        "--transport",
        "http",
        "--header",
        f"Authorization: Bearer {token}",
        *args,
    ]
    env = {**os.environ, "HOME": INSPECTOR_DIR}
    out = subprocess.run(
        cmd, cwd=INSPECTOR_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    start = out.stdout.find("{")
    assert start >= 0, out.stdout + out.stderr
    decoded: dict[str, object] = json.JSONDecoder().raw_decode(out.stdout[start:])[0]
    return decoded


def test_the_inspector_cli_lists_calls_and_is_refused_across_tenants(
    http_url: str, open_session: OpenFn
) -> None:
    token = open_session("Acme").token
    listed = inspector(http_url, token, "--method", "tools/list")
    assert "account_health" in {t["name"] for t in listed["tools"]}  # type: ignore[attr-defined]
    called = inspector(http_url, token, "--method", "tools/call", "--tool-name", "get_subscription")
    assert called["isError"] is False
    refused = inspector(
        http_url,
        token,
        "--method",
        "tools/call",
        "--tool-name",
        "list_tickets",
        "--tool-arg",
        "customer_id=someone-else",
    )
    assert refused["isError"] is True
