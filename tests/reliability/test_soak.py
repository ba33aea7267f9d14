"""Soak: the HTTP mediator under steady load on loopback, bounded in time (slow; run with -m slow).

32 concurrent MCP clients call random read tools for random sessions of three customers for
TENANTGATE_SOAK_SECONDS (default 300). Promises: zero errors, zero foreign rows, every charge
audited, the chain intact, and flat memory (the server's RSS after warm-up grows by less than
20% or 30 MiB, whichever is larger). The summary line (`pytest -s`) reports calls served.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench._http import McpConnection
from tenantgate.cli import pgserver
from tenantgate.mediator.demo_data import World
from tests.pg import REPO, TestDatabase
from tests.reliability._checks import READS, foreign_rows
from tests.reliability.conftest import AUDIENCE, ISSUER, Sessions
from tests.reliability.test_faults import ledger_invariants

SECONDS = float(os.environ.get("TENANTGATE_SOAK_SECONDS", "300"))
CONCURRENCY = 32


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.slow
def test_soak_32_clients_for_minutes_zero_errors_flat_memory(
    database: TestDatabase, world: World, sessions: Sessions, public_pem_file: Path, tmp_path: Path
) -> None:
    opened = [
        (c, sessions.open(c, org)[0].token)
        for c, org in (("Acme", "Northwind"), ("Beta", "Northwind"), ("Gamma", "Globex"))
        for _ in range(4)
    ]
    port = pgserver.free_port()
    env = {
        **os.environ,
        "TENANTGATE_DATABASE_URL": database.mediator_dsn,
        "TENANTGATE_ISSUER": ISSUER,
        "TENANTGATE_AUDIENCE": AUDIENCE,
        "TENANTGATE_JWT_PUBLIC_KEY_FILE": str(public_pem_file),
        "TENANTGATE_RATE_BURST": "100000",
        "TENANTGATE_RATE_PER_SECOND": "100000",
        "TENANTGATE_POOL_MIN_SIZE": "8",
        "TENANTGATE_POOL_MAX_SIZE": "16",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        serve = [sys.executable, "-m", "tenantgate.cli.serve", "--transport", "http"]
        proc = subprocess.Popen(
            [*serve, "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        stats = asyncio.run(_load(port, opened, world, proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    counts = ledger_invariants(database.superuser_dsn, world.northwind.org_id, 10_000_000)
    ledger_invariants(database.superuser_dsn, world.globex.org_id, 10_000_000)
    rss = stats["rss"]
    warm = rss[len(rss) // 5]
    print(
        f"soak: {stats['calls']} calls in {SECONDS:.0f} s ({stats['calls'] / SECONDS:.0f}/s) at "
        f"concurrency {CONCURRENCY}, {stats['errors']} errors, {len(stats['foreign'])} foreign "
        f"rows; server RSS {rss[0] // 1024} MiB at start, {warm // 1024} after warm-up, "
        f"{max(rss) // 1024} max, {rss[-1] // 1024} at the end; Northwind charged "
        f"{counts['charged']} calls, all audited"
    )
    assert stats["errors"] == 0, stats["first_error"]
    assert stats["foreign"] == []
    assert stats["calls"] > SECONDS * 20
    assert rss[-1] - warm < max(warm * 0.2, 30 * 1024), rss


async def _load(port: int, opened: list[tuple[str, str]], world: World, pid: int) -> dict[str, Any]:
    stop = time.monotonic() + SECONDS
    calls = [0]
    errors: list[str] = []
    foreign: list[Any] = []
    rss: list[int] = [_rss_kib(pid)]

    async def client(i: int) -> None:
        rng = random.Random(i)
        customer, token = opened[i % len(opened)]
        conn = McpConnection("127.0.0.1", port, "/mcp", token)
        await conn.open()
        try:
            while time.monotonic() < stop:
                tool = rng.choice(list(READS))
                out = await conn.call_tool(tool, dict(READS[tool]))
                calls[0] += 1
                if out.get("isError"):
                    errors.append(f"{tool}: {out['content'][0]['text']}")
                else:
                    foreign.extend(foreign_rows(world, customer, tool, out["structuredContent"]))
        finally:
            await conn.close()

    async def sampler() -> None:
        while time.monotonic() < stop:
            await asyncio.sleep(min(5.0, SECONDS / 20))
            rss.append(_rss_kib(pid))

    await asyncio.wait_for(
        asyncio.gather(sampler(), *(client(i) for i in range(CONCURRENCY))), timeout=SECONDS + 120
    )
    return {
        "calls": calls[0],
        "errors": len(errors),
        "first_error": errors[:3],
        "foreign": foreign,
        "rss": rss,
    }
