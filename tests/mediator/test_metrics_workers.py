"""`serve --workers 2`: /metrics, answered by either worker, shows the sums across both workers,
from a private folder that is gone once the server stops."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from tenantgate.mediator.demo_data import World
from tenantgate.mediator.settings import Settings
from tests.mediator.conftest import OpenFn, serve_env
from tests.mediator.test_observability import metric

REPO = Path(__file__).resolve().parents[2]
HEADERS = {"Content-Type": "application/json", "Accept": "application/json",
           "MCP-Protocol-Version": "2025-11-25"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def calls_by_pid(folder: Path) -> dict[str, float]:
    """Tool calls each worker wrote to its own counter file."""
    found: dict[str, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = re.sub(r"\D", "", path.name)
        merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        found[pid] = sum(s.value for m in merged if m.name == "tenantgate_tool_calls"
                         for s in m.samples if s.name == "tenantgate_tool_calls_total")
    return found


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def call(url: str, token: str) -> bool:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "list_tickets", "arguments": {}}}
    with httpx.Client(timeout=30) as client:  # a new connection: either worker may take it
        r = client.post(url, json=body, headers={**HEADERS, "Authorization": f"Bearer {token}"})
    return r.status_code == 200 and r.json()["result"]["isError"] is False


def test_metrics_with_two_workers_sum_both_and_their_folder_is_removed_at_exit(
    settings: Settings, open_session: OpenFn, world: World, tmp_path: Path
) -> None:
    token = open_session("Acme").token
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # TMPDIR: where serve makes its private metrics folder
    env = serve_env(settings, TENANTGATE_POOL_MAX_SIZE="2", TMPDIR=str(tmp_path))
    server = subprocess.Popen(
        [sys.executable, "-m", "tenantgate.cli.serve", "--transport", "http", "--workers", "2",
         "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        folders: list[Path] = []
        while time.monotonic() < deadline:  # both workers up: two pids wrote their files
            assert server.poll() is None, server.communicate()[1][-3000:]
            folders = list(tmp_path.glob("tenantgate-metrics-*"))
            pids = {re.sub(r"\D", "", p.name) for f in folders for p in f.glob("*.db")}
            if len(pids) >= 2 and ready(base):
                break
            time.sleep(0.2)
        (folder,) = folders
        assert oct(folder.stat().st_mode & 0o777) == "0o700"
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while time.monotonic() < deadline:  # until each worker has served some calls
                assert all(pool.map(lambda _: call(f"{base}/mcp", token), range(16)))
                sent += 16
                if sum(1 for n in calls_by_pid(folder).values() if n > 0) >= 2:
                    break
        per_worker = calls_by_pid(folder)
        assert sorted(n > 0 for n in per_worker.values()) == [True, True], per_worker
        assert sum(per_worker.values()) == sent
        for _ in range(4):  # whichever worker answers the scrape shows both workers' calls
            with httpx.Client() as client:
                text = client.get(f"{base}/metrics").text
            calls = metric(text, "tenantgate_tool_calls_total", tool="list_tickets",
                           decision="allowed")
            assert calls == sent
            assert metric(text, "tenantgate_tool_call_seconds_count", tool="list_tickets") == sent
            assert metric(text, "tenantgate_db_pool_pool_min") == 2  # 1 per worker, summed
            assert 'pid="' not in text
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, stderr[-3000:]
    assert not list(tmp_path.glob("tenantgate-metrics-*"))
