"""Quick mediator numbers: enforced read vs the bare query (p50, one run), and MCP tools/call
calls/s with p50/p99 at concurrency 1, 8 and 32 over Streamable HTTP on loopback.

    .venv/bin/python -m bench.quick_mcp [--dsn postgresql://postgres:...@127.0.0.1:5432/postgres]
        [--seconds 4] [--workers 1]

Without --dsn it starts the embedded PostgreSQL. The load generator speaks HTTP/1.1 keep-alive on
raw asyncio streams (no client library in the way), one connection per concurrent caller.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg import sql
from pydantic import SecretStr

from tenantgate.cli.demo import ROLES, _migrate
from tenantgate.mediator.db import make_pool
from tenantgate.mediator.demo_data import ALL_SCOPES, seed
from tenantgate.mediator.gate import Gate
from tenantgate.mediator.sessions import SessionManager
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner, TokenVerifier

REPO = Path(__file__).resolve().parent.parent
TOOL = "list_tickets"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))] if s else 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def user_cpu_seconds(user: str) -> float:
    """CPU seconds of every live process of one OS user (the database server's, say)."""
    import pwd

    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return 0.0
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if d.stat().st_uid == uid:
                total += cpu_seconds(int(d.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def inprocess(settings: Settings, su_dsn: str, token: str, n: int) -> dict[str, float]:
    """p50 of the enforced read (whole gate) and of the same template as a bare query."""
    pool = make_pool(settings, min_size=1, max_size=1)
    await pool.open(wait=True)
    gate = Gate(pool, settings)
    claims = TokenVerifier(settings).verify(token)
    # tools/demo.yaml's list_tickets statement, as a plain query (no RLS: a superuser)
    statement = (
        "select ticket_id, subject, status, priority, created_at, updated_at from demo.tickets"
        " where org_id = %(org_id)s and customer_id = %(customer_id)s"
        " order by ticket_id desc limit %(limit)s"
    )
    params = {"org_id": claims.org_id, "customer_id": claims.customer_id, "limit": 20}
    bare_conn = await psycopg.AsyncConnection.connect(su_dsn, autocommit=True, prepare_threshold=0)
    enforced: list[float] = []
    bare: list[float] = []
    for i in range(n + 50):  # interleaved, so both see the same machine state
        t0 = time.perf_counter()
        await gate.call(claims, TOOL, {}, request_key=f"k{i}-{secrets.token_hex(4)}")
        t1 = time.perf_counter()
        await (await bare_conn.execute(statement, params)).fetchall()
        t2 = time.perf_counter()
        if i >= 50:
            enforced.append(t1 - t0)
            bare.append(t2 - t1)
    await bare_conn.close()
    await pool.close()
    e, b = pct(enforced, 50) * 1000, pct(bare, 50) * 1000
    return {"enforced_p50_ms": round(e, 3), "bare_p50_ms": round(b, 3), "ratio": round(e / b, 2)}


def request_bytes(port: int, token: str, i: int) -> bytes:
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": TOOL, "arguments": {}},
        }
    )
    return (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def caller(port: int, token: str, until: float, lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    req = request_bytes(port, token, 1)
    try:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200") or b'"isError":false' not in body:
                errors.append(1)
    finally:
        writer.close()


async def load(port: int, tokens: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[int] = []
    until = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(
        *(caller(port, tokens[i % len(tokens)], until, lat, errors) for i in range(concurrency))
    )
    elapsed = time.perf_counter() - t0
    return {
        "concurrency": concurrency,
        "calls_per_s": round(len(lat) / elapsed),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "errors": len(errors),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", default=os.environ.get("TENANTGATE_TEST_DSN"))
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument(
        "--orgs",
        type=int,
        default=1,
        choices=(1, 2),
        help="spread callers over 1 or 2 orgs (each org's audit chain and balance "
        "serialise its calls)",
    )
    ap.add_argument("--profile", help="py-spy the server during the c=8 run; write this file")
    ap.add_argument("--pg-user", help="OS user running PostgreSQL: report its CPU per call")
    ap.add_argument(
        "--async-commit",
        action="store_true",
        help="synchronous_commit=off for the bench database (no fsync wait per call)",
    )
    args = ap.parse_args()
    server = None
    if args.dsn:
        su = args.dsn
    else:
        from tenantgate.cli import pgserver

        server = pgserver.start_embedded({"fsync": "off", "synchronous_commit": "off"})
        su = server.dsn()
    info = psycopg.conninfo.conninfo_to_dict(su)
    dbname = f"tg_quick_{secrets.token_hex(3)}"
    passwords = {r: secrets.token_urlsafe(12) for r in ROLES}
    with psycopg.connect(su, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    auth = f"{info['user']}:{info.get('password', '')}"
    _migrate(
        f"postgresql://{auth}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{dbname}"
    )
    with psycopg.connect(su, autocommit=True) as conn:
        for role, pw in passwords.items():
            conn.execute(
                sql.SQL("alter role {} password {}").format(sql.Identifier(role), sql.Literal(pw))
            )
    db_su = psycopg.conninfo.make_conninfo(su, dbname=dbname)
    if args.async_commit:
        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute(
                sql.SQL("alter database {} set synchronous_commit = off").format(
                    sql.Identifier(dbname)
                )
            )
    from tenantgate.cli.demo_schema import install_demo

    with psycopg.connect(db_su, autocommit=True) as conn:
        install_demo(conn)
    world = seed(db_su, credits=10_000_000, rate_burst=100_000, rate_per_second=1e5)
    key = ec.generate_private_key(ec.SECP256R1())
    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    pub = tmp / "pub.pem"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    port = free_port()
    aud = f"http://127.0.0.1:{port}/mcp"
    med_dsn = psycopg.conninfo.make_conninfo(
        db_su, user="tenantgate_mediator", password=passwords["tenantgate_mediator"]
    )
    settings = Settings(
        database_url=SecretStr(med_dsn),
        issuer="bench",
        audience=aud,
        jwt_public_key_file=pub,
        pool_min_size=4,
        pool_max_size=16,
    )
    signer = TokenSigner(issuer="bench", audience=aud, private_key=key, algorithm="ES256")
    sm = SessionManager(
        psycopg.conninfo.make_conninfo(
            db_su,
            user="tenantgate_session_manager",
            password=passwords["tenantgate_session_manager"],
        ),
        signer,
    )
    tokens = [
        sm.open(
            org_id=org.org_id,
            operator_id=op,
            connector_id=org.connector_id,
            customer_id=cust.customer_id,
            scopes=ALL_SCOPES,
            ttl_seconds=3600,
        ).token
        for org in world.orgs.values()
        if args.orgs > 1 or org is world.northwind
        for cust in org.customers.values()
        for op in (org.operator_id, org.second_operator_id)
    ]
    print(f"# in-process, {args.n} sequential calls of {TOOL}")
    print(asyncio.run(inprocess(settings, db_su, tokens[0], args.n)))
    env = {
        **os.environ,
        "TENANTGATE_DATABASE_URL": med_dsn,
        "TENANTGATE_ISSUER": "bench",
        "TENANTGATE_AUDIENCE": aud,
        "TENANTGATE_JWT_PUBLIC_KEY_FILE": str(pub),
        "TENANTGATE_RATE_BURST": "100000",
        "TENANTGATE_RATE_PER_SECOND": "100000",
        "TENANTGATE_POOL_MIN_SIZE": "8",
        "TENANTGATE_POOL_MAX_SIZE": "16",
        "TENANTGATE_WORKERS": str(args.workers),
        "TENANTGATE_HTTP_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenantgate.cli.serve", "--transport", "http"],
        env=env,
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start") from None
                time.sleep(0.1)
        asyncio.run(load(port, tokens, 4, 1.0))  # warm up
        print(f"# HTTP tools/call {TOOL}, workers={args.workers}, {args.seconds}s per level")
        for c in (1, 8, 32):
            spy = None
            if args.profile and c == 8:
                spy = subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "-p",
                        str(proc.pid),
                        "-d",
                        str(int(args.seconds)),
                        "-f",
                        "raw",
                        "-o",
                        args.profile,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            before = cpu_seconds(proc.pid)
            pg_before = user_cpu_seconds(args.pg_user) if args.pg_user else 0.0
            row = asyncio.run(load(port, tokens, c, args.seconds))
            calls = row["calls_per_s"] * args.seconds
            if args.workers == 1 and calls:
                row["mediator_cpu_ms_per_call"] = round(
                    (cpu_seconds(proc.pid) - before) / calls * 1000, 3
                )
            if args.pg_user and calls:
                row["pg_cpu_ms_per_call"] = round(
                    (user_cpu_seconds(args.pg_user) - pg_before) / calls * 1000, 3
                )
            print(row)
            if spy is not None:
                spy.wait(30)
    finally:
        proc.terminate()
        proc.wait(10)
        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )
        if server is not None:
            server.stop()
    _ = statistics  # keep the import for readers extending the script


if __name__ == "__main__":
    main()
