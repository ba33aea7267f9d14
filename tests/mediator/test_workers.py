"""`tenantgate serve --workers N`: keep-alive connections spread over every worker."""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.mediator.conftest import serve_env

REPO = Path(__file__).resolve().parents[2]


def _inodes(port: int, state: str) -> set[str]:
    """Socket inodes of local `port` in a TCP state (01 established, 0A listening)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state:
                inodes.add(fields[9])
    return inodes


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                out.append(int(entry.name))
    return out


def _sockets_per_process(root: int, port: int, state: str) -> collections.Counter[int]:
    inodes = _inodes(port, state)
    held: collections.Counter[int] = collections.Counter()
    for pid in _children(root):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held[pid] += 1
    return held


def test_two_workers_both_take_keep_alive_connections(settings: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = serve_env(settings)
    cmd = [sys.executable, "-m", "tenantgate.cli.serve", "--transport", "http"]
    cmd += ["--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    conns: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while len(_sockets_per_process(proc.pid, port, "0A")) < 2 or not _ready(port):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        for _ in range(24):  # kernel hash: all 24 on one of two workers has odds 2**-23
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            conns.append(s)
        held = _sockets_per_process(proc.pid, port, "01")
        assert sum(held.values()) == 24
        assert len(held) == 2, held
    finally:
        for s in conns:
            s.close()
        proc.terminate()
        _, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err[-2000:]


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success
    except httpx.TransportError:
        return False
