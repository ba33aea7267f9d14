"""End to end with `mcp-remote` from npm: it discovers the authorization server, registers,
prints the authorization URL (a scripted person logs in and consents), receives the code on its
loopback callback, and then proxies tools/list and tools/call over stdio."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.authz.stack import Browser, Stack, query

MCP_REMOTE = "mcp-remote@0.15.1"
NPX = shutil.which("npx")


def _npm_has_it() -> bool:
    if NPX is None:
        return False
    try:
        out = subprocess.run(["npm", "view", MCP_REMOTE, "version"], capture_output=True,
                             text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


pytestmark = pytest.mark.skipif(
    not _npm_has_it(), reason=f"needs node/npx and the npm registry for {MCP_REMOTE}"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lines:
    def __init__(self, stream: Any) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.q.put(line)

    def until(self, predicate: Any, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise AssertionError("no such line: " + "".join(self.seen[-30:]))
            try:
                line = self.q.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no such line: " + "".join(self.seen[-30:])) from None
            self.seen.append(line)
            if predicate(line):
                return line


def test_mcp_remote_gets_a_token_through_the_browser_flow_and_calls_a_tool(
    stack: Stack, tmp_path: Path
) -> None:
    assert NPX is not None
    port = _free_port()
    env = {**os.environ, "HOME": str(tmp_path), "MCP_REMOTE_CONFIG_DIR": str(tmp_path / "auth"),
           "BROWSER": "true", "DISPLAY": "", "npm_config_yes": "true",
           "npm_config_cache": os.environ.get("NPM_CONFIG_CACHE", str(Path.home() / ".npm"))}
    proc = subprocess.Popen(
        [NPX, "-y", MCP_REMOTE, stack.mcp_url, str(port), "--transport", "http-only"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=tmp_path, start_new_session=True,
    )
    assert proc.stdin is not None
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    person = Browser()
    try:
        line = err.until(lambda s: s.startswith(f"{stack.as_url}/authorize?"), 180)
        back = person.consent(line.strip(), f"http://localhost:{port}/oauth/callback")
        assert "code" in query(back), line + back[-400:]
        assert httpx.get(back, timeout=30).status_code == 200  # mcp-remote's own callback

        def send(msg: dict[str, Any]) -> None:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(msg) + "\n")
            proc.stdin.flush()

        def reply(msg_id: int) -> dict[str, Any]:
            raw = out.until(lambda s: s.startswith("{") and json.loads(s).get("id") == msg_id,
                            120)
            doc: dict[str, Any] = json.loads(raw)
            return doc

        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "pytest", "version": "1"}}})
        assert "result" in reply(1)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        names = {t["name"] for t in reply(2)["result"]["tools"]}
        assert "list_tickets" in names
        send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
              "params": {"name": "list_tickets", "arguments": {"status": "open"}}})
        result = reply(3)["result"]
        assert not result.get("isError"), result
        assert "Acme: login fails" in json.dumps(result)
    finally:
        person.close()
        os.killpg(proc.pid, signal.SIGTERM)  # npx and the node process it started
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
