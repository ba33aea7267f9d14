"""End to end over MCP Streamable HTTP: tenantgate vs Google's MCP Toolbox for Databases.

Both servers run on 127.0.0.1 against the same Postgres database and serve the same read, the
demo ``list_tickets`` template (20 newest tickets of one customer):

* **tenantgate** (``tenantgate serve --transport http``, 1 worker; 2 workers as an extra row):
  verifies the bearer token, then one statement of ``tenantgate.call_tool`` does the session
  check, catalog and scope, arguments, rate limit, credit spend, the tool's function under forced
  RLS, shaping and its audit row; the mediator encodes the result.
* **Toolbox** (npm ``@toolbox-sdk/server-linux-x64``, a ``postgres-sql`` tool in a tools.yaml)
  runs the same SELECT with the org and customer as plain tool parameters, as the superuser:
  no token, no tenant isolation, no credits, no audit.

One client drives both (bench/_http.py: raw HTTP/1.1 keep-alive, one connection per concurrent
caller, an MCP session each). Read calls/s and p50/p99 at concurrency 1, 8 and 32, and the ratio
tenantgate / Toolbox (calls/s: above 1 means tenantgate served more). Client, servers and
Postgres share the same cores, so absolute numbers are low; the ratio is the point.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import _cpu, _world
from bench._common import REPO, Result, create_database, run_script
from bench._common import summary_ms as _summary
from bench._http import McpConnection
from bench.gate_overhead import AUDIENCE, ISSUER, Harness
from tenantgate.cli import pgserver

TOOLBOX_VERSION = "1.12.0"
TOOLBOX_PACKAGE = f"@toolbox-sdk/server-linux-x64@{TOOLBOX_VERSION}"
CACHE = Path(os.environ.get("TENANTGATE_BENCH_CACHE", Path.home() / ".cache" / "tenantgate-bench"))
TOOLBOX_SQL = (
    "select ticket_id, subject, status, priority, created_at, updated_at"
    " from demo.tickets where org_id = $1::uuid and customer_id = $2::uuid"
    " order by ticket_id desc limit $3"
)


def toolbox_binary(install: bool = True) -> Path | None:
    """The Toolbox binary from its npm package, installed into the cache folder on first use
    (about 300 MB: a smoke run uses it only when a full run has installed it already)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    folder = CACHE / "toolbox"
    exe = folder / "node_modules" / "@toolbox-sdk" / "server-linux-x64" / "bin" / "toolbox"
    if install and not exe.is_file() and shutil.which("npm"):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(folder),
                "--no-audit",
                "--no-fund",
                "--silent",
                TOOLBOX_PACKAGE,
            ],
            check=False,
            timeout=600,
            capture_output=True,
        )
    if not exe.is_file():
        return None
    exe.chmod(0o755)
    return exe


@dataclass
class Server:
    """A running MCP server: where to reach it and how to call the tool."""

    label: str
    port: int
    path: str
    tool: str
    proc: subprocess.Popen[bytes]


# What one caller sends: its bearer token (None for Toolbox) and the tool arguments.
Caller = tuple[str | None, dict[str, Any]]


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-800:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port}: {log.read_text()[-800:]}")


@contextlib.contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path, port: int, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            _wait_port(port, proc, log)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@contextlib.contextmanager
def tenantgate_server(h: Harness, tmp: Path, workers: int) -> Iterator[Server]:
    port = pgserver.free_port()
    env = {
        **os.environ,
        "TENANTGATE_DATABASE_URL": h.db.mediator_dsn,
        "TENANTGATE_ISSUER": ISSUER,
        "TENANTGATE_AUDIENCE": AUDIENCE,
        "TENANTGATE_JWT_PUBLIC_KEY_FILE": str(h.pub),
        "TENANTGATE_RATE_BURST": "100000",
        "TENANTGATE_RATE_PER_SECOND": "100000",
        "TENANTGATE_POOL_MIN_SIZE": "8",
        "TENANTGATE_POOL_MAX_SIZE": "16",
    }
    command = [
        sys.executable,
        "-m",
        "tenantgate.cli.serve",
        "--transport",
        "http",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with _process(command, env, tmp / f"tenantgate-{workers}.log", port, REPO) as proc:
        yield Server(
            f"tenantgate ({workers} worker{'s' if workers > 1 else ''})",
            port,
            "/mcp",
            "list_tickets",
            proc,
        )


@contextlib.contextmanager
def toolbox_server(exe: Path, h: Harness, tmp: Path) -> Iterator[Server]:
    port = pgserver.free_port()
    server = h.db.server
    config = tmp / "tools.yaml"
    config.write_text(f"""kind: source
name: pg
type: postgres
host: {server.host}
port: {server.port}
database: {h.db.name}
user: {server.user}
password: "{server.password or ""}"
---
kind: tool
name: list_tickets
type: postgres-sql
source: pg
description: Support tickets of one customer, newest first.
parameters:
- name: org_id
  type: string
  description: the org
- name: customer_id
  type: string
  description: the customer
- name: limit
  type: integer
  description: rows
statement: {TOOLBOX_SQL}
""")
    command = [
        str(exe),
        "--config",
        str(config),
        "--address",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-version-check",
        "--disable-reload",
        "--log-level",
        "WARN",
    ]
    with _process(command, dict(os.environ), tmp / "toolbox.log", port, tmp) as proc:
        yield Server(f"Toolbox {TOOLBOX_VERSION}", port, "/mcp", "list_tickets", proc)


async def _drive(
    s: Server, callers: list[Caller], concurrency: int, seconds: float, postmaster: int = 0
) -> dict[str, Any]:
    plan = [callers[i % len(callers)] for i in range(concurrency)]
    conns = [(McpConnection("127.0.0.1", s.port, s.path, token), args) for token, args in plan]
    for c, _ in conns:
        await c.open()
    lat: list[float] = []
    errors = [0]

    async def worker(conn: tuple[McpConnection, dict[str, Any]], stop: float, record: bool) -> None:
        c, arguments = conn
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            out = await c.call_tool(s.tool, arguments)
            if out.get("isError"):
                errors[0] += 1
            elif record:
                lat.append(time.perf_counter() - t0)

    try:
        warm = time.perf_counter() + min(1.0, seconds / 2)
        await asyncio.gather(*(worker(c, warm, False) for c in conns))
        server_pids, pg_pids = _cpu.tree(s.proc.pid), _cpu.tree(postmaster) if postmaster else []
        cpu0 = (_cpu.cpu_seconds(server_pids), _cpu.cpu_seconds(pg_pids), time.process_time())
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c, t0 + seconds, True) for c in conns))
        elapsed = time.perf_counter() - t0
        cpu1 = (_cpu.cpu_seconds(server_pids), _cpu.cpu_seconds(pg_pids), time.process_time())
    finally:
        for c, _ in conns:
            await c.close()
    if errors[0]:
        raise RuntimeError(f"{s.label}: {errors[0]} tool errors")
    per_call = [
        round((b - a) * 1000 / max(1, len(lat)), 3) for a, b in zip(cpu0, cpu1, strict=True)
    ]
    return {
        "calls_per_s": round(len(lat) / elapsed),
        **_summary(lat),
        "server_cpu_ms": per_call[0],
        "postgres_cpu_ms": per_call[1],
        "client_cpu_ms": per_call[2],
    }


def _spread(h: Harness, orgs: int) -> tuple[list[Caller], list[Caller]]:
    """`orgs` more orgs, one customer and session each: (tenantgate callers, Toolbox callers)."""
    with psycopg.connect(h.db.superuser_dsn, autocommit=True) as su:
        _world.add_orgs(su, orgs, credits=1_000_000_000)
        with su.transaction():
            _world.add_customers(su, 1, tickets_each=3)
        tenants = _world.sample_tenants(su, orgs)
    ours: list[Caller] = []
    theirs: list[Caller] = []
    for t in tenants:
        token = h.signer.mint(
            operator_id=t.operator_id,
            org_id=t.org_id,
            connector_id=t.connector_id,
            customer_id=t.customer_id,
            session_id=t.session_id,
            session_secret=t.secret,
            scopes=["read:tickets"],
            lifetime_seconds=3600,
        )
        ours.append((token, {"limit": 20}))
        theirs.append((None, {"org_id": t.org_id, "customer_id": t.customer_id, "limit": 20}))
    return ours, theirs


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    levels, seconds = ((1, 8), 1.0) if smoke else ((1, 8, 32), 8.0)
    result = Result(
        "mcp_e2e",
        "End to end over MCP Streamable HTTP: tenantgate vs MCP Toolbox, "
        "same list_tickets read, same Postgres, same client",
        smoke=smoke,
    )
    exe = toolbox_binary(install=not smoke)
    rates: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        h = Harness(create_database(server, "e2e"), tmp)
        ours, theirs = _spread(h, 32)
        with psycopg.connect(h.db.superuser_dsn, autocommit=True) as su:
            row = su.execute("select pg_backend_pid()").fetchone()
        postmaster = _cpu.parent_of(int(row[0])) if row else 0
        one: list[Caller] = [(h.opened.token, {"limit": 20})]
        with contextlib.ExitStack() as stack:
            tg1 = stack.enter_context(tenantgate_server(h, tmp, 1))
            runs: list[tuple[str, Server, list[Caller]]] = [
                ("tenantgate, 1 worker, 32 orgs", tg1, ours),
                ("tenantgate, 1 worker, one session", tg1, one),
            ]
            if not smoke:
                tg2 = stack.enter_context(tenantgate_server(h, tmp, 2))
                runs.append(("tenantgate, 2 workers, 32 orgs", tg2, ours))
            if exe is not None:
                tb = stack.enter_context(toolbox_server(exe, h, tmp))
                runs.insert(0, (f"Toolbox {TOOLBOX_VERSION}, 32 orgs", tb, theirs))
            else:
                result.notes.append(
                    "Toolbox not measured: its npm package could not be "
                    "installed here (needs npm and linux-x64)"
                )
            for c in levels:
                for label, srv, callers in runs:
                    r = asyncio.run(_drive(srv, callers, c, seconds, postmaster))
                    rates[(label, c)] = r
                    result.rows.append({"server": label, "concurrency": c, **r})
    if exe is not None:
        tb_label = f"Toolbox {TOOLBOX_VERSION}, 32 orgs"
        for c in levels:
            for label in (
                "tenantgate, 1 worker, 32 orgs",
                "tenantgate, 2 workers, 32 orgs",
                "tenantgate, 1 worker, one session",
            ):
                if (label, c) in rates:
                    ours_r, theirs_r = rates[(label, c)], rates[(tb_label, c)]
                    result.ratios[f"{label} / Toolbox calls/s at {c}"] = (
                        ours_r["calls_per_s"] / theirs_r["calls_per_s"]
                    )
                    result.ratios[f"{label} / Toolbox p50 at {c}"] = (
                        ours_r["p50_ms"] / theirs_r["p50_ms"]
                    )
    result.notes.append(
        "Toolbox runs the SELECT as the superuser with org and customer as tool "
        "parameters: no token, no isolation, no credits, no audit"
    )
    result.notes.append(
        "'32 orgs': caller i acts for tenant i mod 32, each in its own org; 'one "
        "session': every caller uses one session, so every call queues on that "
        "org's credit row, that operator's rate bucket and that org's audit head "
        "(row locks held from the charge inside tenantgate.call_tool to its commit)"
    )
    result.notes.append(
        "server_cpu_ms, postgres_cpu_ms and client_cpu_ms: CPU time per call of the server's "
        "processes, of every PostgreSQL process and of the benchmark's own client (from /proc)"
    )
    result.notes.append(
        "at concurrency 1 the '32 orgs' and 'one session' rows run the same workload (one "
        "caller, one session): their difference is this machine's noise"
    )
    return [result]


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
