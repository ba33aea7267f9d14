"""`tenantgate demo` as a user runs it: what it prints, its port, and how it stops."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]


def start(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTGATE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tenantgate.cli.demo", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_a_busy_port_is_an_error_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = start("--port", str(port))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in err
    assert "starting embedded PostgreSQL" not in err


@pytest.fixture
def demo_process() -> Iterator[subprocess.Popen[str]]:
    """`tenantgate demo --port 0`; stopped (SIGTERM, then kill) if a test leaves it running."""
    proc = start("--port", "0")
    yield proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):  # a failed test must not leak its pipes
        if stream is not None:
            stream.close()
            proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_demo_prints_how_to_connect_and_cleans_up_on_a_signal(
    signum: int, demo_process: subprocess.Popen[str]
) -> None:
    proc = demo_process
    assert proc.stdout is not None
    assert proc.stderr is not None
    printed: list[str] = []
    deadline = time.monotonic() + 180
    while not printed or "Ctrl-C" not in printed[-1]:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        printed.append(line)
    text = "".join(printed)
    url = re.search(r"mediator on (http://127\.0\.0\.1:\d+/mcp)", text)
    assert url is not None
    while True:  # the tokens are printed just before the server listens
        try:
            assert httpx.get(url.group(1).replace("/mcp", "/healthz")).status_code == 200
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert "Acme and Beta are two\nof Northwind's customers" in text
    assert text.count("npx -y @modelcontextprotocol/inspector@2 --cli") == 2
    snippet = json.loads(text.split("claude_desktop_config.json:\n", 1)[1].split("\n\n")[0])
    server = snippet["mcpServers"]["tenantgate-demo-acme"]
    assert server["args"] == ["-m", "tenantgate.cli.serve", "--transport", "stdio"]
    workdir = Path(server["env"]["TENANTGATE_JWT_PUBLIC_KEY_FILE"]).parent
    operator_dsn = re.search(r"approvals list Northwind --dsn '([^']+)'", text)
    assert operator_dsn is not None
    with psycopg.connect(operator_dsn.group(1)) as conn:
        assert conn.execute("select current_user").fetchone() == ("tenantgate_admin",)
    assert workdir.is_dir()

    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert "demo stopped: embedded PostgreSQL stopped, its files removed" in err
    assert "pipeline aborted" not in err
    assert "Traceback" not in err
    assert not workdir.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(operator_dsn.group(1), connect_timeout=3).close()
