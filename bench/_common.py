"""Shared pieces of the benchmarks: a throwaway server, timing, percentiles, machine facts."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql

from tenantgate.cli import pgserver

REPO = Path(__file__).resolve().parent.parent
PASSWORDS = {
    "tenantgate_mediator": "bench-mediator",
    "tenantgate_session_manager": "bench-session-manager",
    "tenantgate_admin": "bench-admin",
}
# Enough connections for 64 spenders plus the pools; fsync off: we measure CPU and locks, not disks.
SERVER_CONFIG = {
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


@dataclass
class Result:
    """One benchmark's numbers: rows for a table, ratios for the summary, notes in plain words."""

    name: str
    title: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    smoke: bool = False
    # The bench module it came from (run_all fills it in): the report cites its docstring.
    source: str = ""
    # How bench/_report.py draws it, from the row keys (see _report.plot_from_spec), e.g.
    # {"kind": "grouped", "x": "concurrency", "series": "server", "y": "calls_per_s"}.
    plot: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p99/mean in milliseconds of a list of durations in seconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else 0.0,
        "n": len(ms),
    }


def machine() -> dict[str, str]:
    """What the numbers ran on."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "python": sys.version.split()[0],
        "os": platform.platform(),
        "psycopg": psycopg.__version__,
    }


def migrate(url: str) -> None:
    """`alembic upgrade head` on one database, as the superuser."""
    config = Config(toml_file=str(REPO / "pyproject.toml"))
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        command.upgrade(config, "head")
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous


@dataclass
class BenchDatabase:
    """A fresh migrated database on a bench server, with the DSN of each role."""

    server: pgserver.RunningServer
    name: str

    @property
    def superuser_dsn(self) -> str:
        return self.server.dsn(self.name)

    def dsn_for(self, role: str) -> str:
        return self.server.dsn(self.name, user=role, password=PASSWORDS[role])

    @property
    def mediator_dsn(self) -> str:
        return self.dsn_for("tenantgate_mediator")


def create_database(server: pgserver.RunningServer, prefix: str = "bench") -> BenchDatabase:
    """Create and migrate a database, install the demo schema and tools, and give the
    tenantgate roles bench passwords."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    auth = server.user + (f":{server.password}" if server.password else "")
    migrate(f"postgresql://{auth}@{server.host}:{server.port}/{name}")
    from tenantgate.cli.demo_schema import (
        install_demo,  # the demo schema is not a migration any more
    )

    with psycopg.connect(server.dsn(name), autocommit=True) as conn:
        install_demo(conn)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        for role, password in PASSWORDS.items():
            conn.execute(
                sql.SQL("alter role {} password {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
    return BenchDatabase(server, name)


@contextlib.contextmanager
def bench_server(dsn: str | None = None) -> Iterator[pgserver.RunningServer]:
    """The server to measure on: `dsn` (a superuser on a server you run) or a fresh embedded one."""
    if dsn:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        server = pgserver.RunningServer(
            host=str(info.get("host") or "127.0.0.1"),
            port=int(info.get("port") or 5432),
            user=str(info.get("user") or "postgres"),
            password=str(info["password"]) if info.get("password") else None,
            kind="external",
        )
        pgserver.wait_until_ready(server)
        yield server
        return
    server = pgserver.start_embedded(SERVER_CONFIG)
    try:
        yield server
    finally:
        server.stop()


def arg_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for CI")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("TENANTGATE_BENCH_DSN"),
        help="superuser DSN of a server to use (default: start an embedded one)",
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    return parser


def print_result(result: Result) -> None:
    """Print a result as aligned columns, then its ratios and notes."""
    print(f"\n== {result.title}{' (smoke)' if result.smoke else ''}")
    if result.rows:
        keys = list(dict.fromkeys(k for row in result.rows for k in row))
        widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in result.rows)) for k in keys}
        print("  ".join(k.ljust(widths[k]) for k in keys))
        for row in result.rows:
            print("  ".join(str(row.get(k, "")).ljust(widths[k]) for k in keys))
    for key, value in result.ratios.items():
        print(f"ratio {key}: {value:.2f}")
    for note in result.notes:
        print(f"note: {note}")


class Deadline:
    """A time budget: `left()` seconds remain, `over()` once it is spent."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def over(self) -> bool:
        return time.monotonic() >= self.end


def run_threads(
    dsn: str,
    workers: int,
    seconds: float,
    work: Callable[[psycopg.Connection[tuple[object, ...]], int, int], None],
    max_calls: int = 1_000_000,
) -> tuple[int, float, list[float]]:
    """Call `work(conn, worker, n)` in `workers` threads (one connection each) for `seconds`.

    Returns (calls, elapsed seconds, per-call latencies). Each worker stops at the deadline or
    after `max_calls`; the first error is re-raised after every thread has stopped.
    """
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(workers)]
    barrier = threading.Barrier(workers + 1)
    lat: list[list[float]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []
    stop_at = [0.0]

    def loop(i: int) -> None:
        conn, mine = conns[i], lat[i]
        barrier.wait()
        try:
            for n in range(max_calls):
                t0 = time.perf_counter()
                if t0 >= stop_at[0]:
                    break
                work(conn, i, n)
                mine.append(time.perf_counter() - t0)
        except BaseException as exc:  # re-raised after the join
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    if errors:
        raise errors[0]
    flat = [x for xs in lat for x in xs]
    return len(flat), elapsed, flat


def run_script(
    description: str | None, run: Callable[[pgserver.RunningServer, bool], list[Result]]
) -> int:
    """The command line of a benchmark script: server, run, print, optional JSON."""
    args = arg_parser(description).parse_args()
    with bench_server(args.dsn) as server:
        results = run(server, args.smoke)
    for r in results:
        print_result(r)
    if args.json:
        args.json.write_text("[" + ",".join(r.to_json() for r in results) + "]")
    return 0
