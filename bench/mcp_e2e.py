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
tenantgate / Toolbox (calls/s: above 1 means tenantgate served more). Each level runs every
server in two rounds, the second in reverse order, so load drift on a shared machine hits all
rows alike. The same table is measured again with both servers behind one PgBouncer in
transaction mode, and a CPU budget (CPU per call of server, PostgreSQL and client, from /proc)
turns into a projection for bigger machines. Client, servers and Postgres share the same cores,
so absolute numbers are low; the ratios are the point.
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
from bench._common import PASSWORDS, REPO, Result, create_database, run_script
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
def tenantgate_server(
    h: Harness, tmp: Path, workers: int, dsn: str | None = None, label: str = ""
) -> Iterator[Server]:
    """`tenantgate serve --transport http`; `dsn` other than the database's own (PgBouncer in
    transaction mode) also turns server-side prepared statements off, as docs/deploy says."""
    port = pgserver.free_port()
    env = {
        **os.environ,
        "TENANTGATE_DATABASE_URL": dsn or h.db.mediator_dsn,
        "TENANTGATE_ISSUER": ISSUER,
        "TENANTGATE_AUDIENCE": AUDIENCE,
        "TENANTGATE_JWT_PUBLIC_KEY_FILE": str(h.pub),
        "TENANTGATE_RATE_BURST": "100000",
        "TENANTGATE_RATE_PER_SECOND": "100000",
        # 8..16 PostgreSQL connections in all, split over the workers (pool sizes are per
        # worker): more backends cost PostgreSQL CPU per call, which would be no worker's doing
        "TENANTGATE_POOL_MIN_SIZE": str(max(1, 8 // workers)),
        "TENANTGATE_POOL_MAX_SIZE": str(max(2, 16 // workers)),
        "TENANTGATE_LOG_LEVEL": "INFO",  # the request log stays on: it is part of the cost
    }
    if dsn is not None:
        env["TENANTGATE_PREPARE_THRESHOLD"] = "none"
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
    log = tmp / f"tenantgate-{workers}-{port}.log"
    with _process(command, env, log, port, REPO) as proc:
        name = label or f"tenantgate ({workers} worker{'s' if workers > 1 else ''})"
        yield Server(name, port, "/mcp", "list_tickets", proc)


@contextlib.contextmanager
def toolbox_server(
    exe: Path, h: Harness, tmp: Path, via: tuple[str, int] | None = None
) -> Iterator[Server]:
    """Toolbox on the same database; `via` (host, port) of a PgBouncer in transaction mode, with
    pgx's unnamed statements (queryExecMode exec) instead of its per-connection statement cache."""
    port = pgserver.free_port()
    server = h.db.server
    host, db_port = via or (server.host, server.port)
    config = tmp / f"tools-{port}.yaml"
    mode = "queryExecMode: exec\n" if via else ""
    config.write_text(f"""kind: source
name: pg
type: postgres
host: {host}
port: {db_port}
database: {h.db.name}
user: {server.user}
password: "{server.password or ""}"
{mode}---
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
    with _process(command, dict(os.environ), tmp / f"toolbox-{port}.log", port, tmp) as proc:
        yield Server(f"Toolbox {TOOLBOX_VERSION}", port, "/mcp", "list_tickets", proc)


@dataclass
class Sample:
    """One timed stretch of calls: how many, how long, each latency, CPU seconds by process."""

    elapsed: float
    lat: list[float]
    cpu: tuple[float, ...]  # server, PostgreSQL, bench client, PgBouncer
    bouncer: bool


async def _measure(
    s: Server,
    callers: list[Caller],
    concurrency: int,
    seconds: float,
    postmaster: int = 0,
    bouncer: int = 0,
    warm: float = 1.0,
) -> Sample:
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
        until = time.perf_counter() + min(warm, seconds / 2)
        await asyncio.gather(*(worker(c, until, False) for c in conns))
        server_pids, pg_pids = _cpu.tree(s.proc.pid), _cpu.tree(postmaster) if postmaster else []
        bouncer_pids = _cpu.tree(bouncer) if bouncer else []

        def cpu() -> tuple[float, ...]:
            return (
                _cpu.cpu_seconds(server_pids),
                _cpu.cpu_seconds(pg_pids),
                time.process_time(),
                _cpu.cpu_seconds(bouncer_pids),
            )

        cpu0 = cpu()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c, t0 + seconds, True) for c in conns))
        elapsed = time.perf_counter() - t0
        cpu1 = cpu()
    finally:
        for c, _ in conns:
            await c.close()
    if errors[0]:
        raise RuntimeError(f"{s.label}: {errors[0]} tool errors")
    spent = tuple(b - a for a, b in zip(cpu0, cpu1, strict=True))
    return Sample(elapsed, lat, spent, bool(bouncer))


def summarise(samples: list[Sample]) -> dict[str, Any]:
    """calls/s, latency percentiles and CPU ms per call over one or more samples."""
    lat = [x for s in samples for x in s.lat]
    elapsed = sum(s.elapsed for s in samples)
    calls = max(1, len(lat))
    cpu = [round(sum(s.cpu[i] for s in samples) * 1000 / calls, 3) for i in range(4)]
    out = {
        "calls_per_s": round(len(lat) / elapsed),
        **_summary(lat),
        "server_cpu_ms": cpu[0],
        "postgres_cpu_ms": cpu[1],
        "client_cpu_ms": cpu[2],
    }
    if any(s.bouncer for s in samples):
        out["pgbouncer_cpu_ms"] = cpu[3]
    return out


async def _drive(
    s: Server,
    callers: list[Caller],
    concurrency: int,
    seconds: float,
    postmaster: int = 0,
    bouncer: int = 0,
) -> dict[str, Any]:
    """One stretch of `seconds` at `concurrency`, summarised."""
    return summarise([await _measure(s, callers, concurrency, seconds, postmaster, bouncer)])


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


TB = f"Toolbox {TOOLBOX_VERSION}, 32 orgs"
TG1, TG2, TG_ONE = (
    "tenantgate, 1 worker, 32 orgs",
    "tenantgate, 2 workers, 32 orgs",
    "tenantgate, 1 worker, one session",
)
TB_PGB, TG_PGB = f"Toolbox {TOOLBOX_VERSION}, PgBouncer", "tenantgate, 1 worker, PgBouncer"
# What each extra microsecond buys, in the order tenantgate spends it (docs/design.md).
BOUGHT = (
    "mediator: the bearer token's signature (once per token) and time claims (every call), "
    "Host/Origin/version checks, the request log line and the metrics",
    "PostgreSQL: the session check (the secret's hash, live session, operator and customer), "
    "the tool in the session's catalog and scope, its arguments against the schema, the "
    "operator's rate bucket, the idempotent credit charge, the tool's statement under forced "
    "row-level security as a role that owns nothing, shaping by data class, and the "
    "hash-chained audit row, all in one transaction",
)


def _plot() -> dict[str, Any]:
    return {"kind": "grouped", "x": "concurrency", "series": "server", "y": "calls_per_s"}


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    levels, seconds, rounds = ((1, 8), 1.0, 1) if smoke else ((1, 8, 32), 8.0, 2)
    direct = Result(
        "mcp_e2e",
        "End to end over MCP Streamable HTTP: tenantgate vs MCP Toolbox, "
        "same list_tickets read, same Postgres, same client",
        smoke=smoke,
        plot=_plot(),
    )
    pooled = Result(
        "mcp_e2e_pgbouncer",
        "End to end behind PgBouncer in transaction mode: tenantgate vs MCP Toolbox",
        smoke=smoke,
        plot=_plot(),
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
            runs: list[tuple[str, Server, list[Caller], Result, int]] = [
                (TG1, tg1, ours, direct, 0),
                (TG_ONE, tg1, one, direct, 0),
            ]
            if not smoke:
                tg2 = stack.enter_context(tenantgate_server(h, tmp, 2))
                runs.insert(1, (TG2, tg2, ours, direct, 0))
            if exe is not None:
                tb = stack.enter_context(toolbox_server(exe, h, tmp))
                runs.insert(0, (TB, tb, theirs, direct, 0))
            else:
                direct.notes.append(
                    "Toolbox not measured: its npm package could not be "
                    "installed here (needs npm and linux-x64)"
                )
            bouncer = _bouncer(stack, server, pooled)
            if bouncer is not None:
                role = "tenantgate_mediator"
                dsn = bouncer.dsn(h.db.name, role, PASSWORDS[role])
                tgb = stack.enter_context(tenantgate_server(h, tmp, 1, dsn, TG_PGB))
                runs.append((TG_PGB, tgb, ours, pooled, bouncer.pid))
                if exe is not None:
                    via = (bouncer.host, bouncer.port)
                    tbb = stack.enter_context(toolbox_server(exe, h, tmp, via))
                    runs.append((TB_PGB, tbb, theirs, pooled, bouncer.pid))
            for c in levels:  # rounds in alternating order: load drift hits every row alike
                samples: dict[str, list[Sample]] = {label: [] for label, *_ in runs}
                for n in range(rounds):
                    for label, srv, callers, _, pgb in runs if n % 2 == 0 else runs[::-1]:
                        got = _measure(
                            srv, callers, c, seconds / rounds, postmaster, pgb, 1.0 / (n + 1)
                        )
                        samples[label].append(asyncio.run(got))
                for label, _, _, table, _ in runs:
                    r = summarise(samples[label])
                    rates[(label, c)] = r
                    table.rows.append({"server": label, "concurrency": c, **r})
    pooled.rows.sort(key=lambda x: (x["concurrency"], not x["server"].startswith("Toolbox")))
    for c in levels:
        for label, base, table in (
            (TG1, TB, direct),
            (TG2, TB, direct),
            (TG_ONE, TB, direct),
            (TG_PGB, TB_PGB, pooled),
        ):
            if (label, c) in rates and (base, c) in rates:
                ours_r, theirs_r = rates[(label, c)], rates[(base, c)]
                table.ratios[f"{label} / Toolbox calls/s at {c}"] = (
                    ours_r["calls_per_s"] / theirs_r["calls_per_s"]
                )
        if (TG_PGB, c) in rates and (TG1, c) in rates:
            pooled.ratios[f"tenantgate via PgBouncer / direct calls/s at {c}"] = (
                rates[(TG_PGB, c)]["calls_per_s"] / rates[(TG1, c)]["calls_per_s"]
            )
    _notes(direct, pooled)
    budget = _budget(rates, levels, smoke)
    return [direct, budget, pooled] if budget.rows else [direct, pooled]


def _bouncer(stack: contextlib.ExitStack, server: pgserver.RunningServer, pooled: Result) -> Any:
    """PgBouncer (Debian's package) in transaction mode in front of the bench server, or None."""
    from tests.reliability import _pgbouncer

    if _pgbouncer.binary() is None:
        pooled.notes.append("PgBouncer not measured: install the Debian package pgbouncer")
        return None
    users = {"tenantgate_mediator": PASSWORDS["tenantgate_mediator"]}
    if server.password:
        users[server.user] = server.password
    return stack.enter_context(_pgbouncer.pgbouncer(server, users, pool_size=16))


def _notes(direct: Result, pooled: Result) -> None:
    direct.notes.append(
        "Toolbox runs the SELECT as the superuser with org and customer as tool "
        "parameters: no token, no isolation, no credits, no audit"
    )
    direct.notes.append(
        "'32 orgs': caller i acts for tenant i mod 32, each in its own org; 'one "
        "session': every caller uses one session, so every call queues on that "
        "org's credit row, that operator's rate bucket and that org's audit head "
        "(row locks held from the charge inside tenantgate.call_tool to its commit)"
    )
    direct.notes.append(
        "server_cpu_ms, postgres_cpu_ms and client_cpu_ms: CPU time per call of the server's "
        "processes, of every PostgreSQL process and of the benchmark's own client (from /proc)"
    )
    direct.notes.append(
        "at concurrency 1 the '32 orgs' and 'one session' rows run the same workload (one "
        "caller, one session): their difference is this machine's noise"
    )
    direct.notes.append(
        "tenantgate's pools hold 8 to 16 PostgreSQL connections in all, split over its "
        "workers (4 to 8 each with 2 workers), so a second worker adds no backends"
    )
    pooled.notes.append(
        "both servers reach PostgreSQL through one PgBouncer 'pool_mode = transaction' "
        "(default_pool_size 16 per user): tenantgate with TENANTGATE_PREPARE_THRESHOLD=none, "
        "Toolbox with queryExecMode exec (no named prepared statements, which a transaction-"
        "mode pooler cannot keep); pgbouncer_cpu_ms is PgBouncer's own CPU per call"
    )


def _budget(
    rates: dict[tuple[str, int], dict[str, Any]], levels: tuple[int, ...], smoke: bool
) -> Result:
    """CPU per call by process, what it buys, worker scaling, and a projection from it."""
    budget = Result(
        "mcp_e2e_budget",
        "CPU budget per call, workers, and what each extra microsecond buys",
        smoke=smoke,
        plot={"kind": "grouped", "x": "process", "series": "server", "y": "cpu_us_per_call"},
    )
    top = max(levels)
    if (TG1, top) not in rates:
        return budget
    for label in (TB, TG1, TG2):
        if (label, top) not in rates:
            continue
        r = rates[(label, top)]
        for process, key in (
            ("MCP server", "server_cpu_ms"),
            ("PostgreSQL", "postgres_cpu_ms"),
            ("bench client", "client_cpu_ms"),
        ):
            budget.rows.append(
                {"server": label, "process": process, "cpu_us_per_call": round(r[key] * 1000)}
            )
    ours = rates[(TG1, top)]
    if (TB, top) in rates:
        theirs = rates[(TB, top)]
        extra_med = (ours["server_cpu_ms"] - theirs["server_cpu_ms"]) * 1000
        extra_pg = (ours["postgres_cpu_ms"] - theirs["postgres_cpu_ms"]) * 1000
        budget.notes.append(
            f"each call costs {extra_med:+.0f} us of server CPU and {extra_pg:+.0f} us of "
            f"PostgreSQL CPU over Toolbox at concurrency {top}. "
            + " ".join(f"{b}." for b in BOUGHT)
            + " Toolbox spends none of it: it trusts whatever org and customer it is given"
        )
    for c in levels:
        if (TG2, c) in rates and (TG1, c) in rates:
            budget.ratios[f"2 workers / 1 worker calls/s at {c}"] = (
                rates[(TG2, c)]["calls_per_s"] / rates[(TG1, c)]["calls_per_s"]
            )
    med = ours["server_cpu_ms"]
    pg = ours["postgres_cpu_ms"]
    total = med + pg + ours["client_cpu_ms"]
    cores = os.cpu_count() or 1
    budget.ratios["mediator CPU per call, ms (goal <= 0.25)"] = med
    budget.notes.append(
        f"on this machine ({cores} cores shared by client, mediator and PostgreSQL) a call "
        f"costs {total:.2f} ms of CPU in all, so {cores} cores cap the run near "
        f"{cores * 1000 / total:,.0f} calls/s whatever the worker count "
        f"(measured: {ours['calls_per_s']:,} with 1 worker at {top}); a second worker can only "
        "add its own overhead here"
    )
    both = med + pg
    sizes = ", ".join(
        f"{k} cores: ~{k * 1000 / both:,.0f} calls/s with {max(1, round(k * med / both))} "
        f"worker{'s' if round(k * med / both) > 1 else ''}"
        for k in (4, 8, 16, 32)
    )
    budget.notes.append(
        "projection from the per-call CPU above (not measured): one worker serves at most "
        f"{1000 / med:,.0f} calls/s (one core at {med:.3f} ms a call); with the clients on other "
        f"machines, a call needs {both:.2f} ms of CPU in mediator and PostgreSQL together, so "
        f"workers should get {100 * med / both:.0f}% of the cores and PostgreSQL the rest: "
        f"{sizes}. Workers now accept on their own SO_REUSEPORT sockets, so the kernel spreads "
        "connections over them (tests/mediator/test_workers.py)"
    )
    return budget


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
