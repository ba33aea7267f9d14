"""Gate overhead in-process: an enforced read tool call vs the same templated query run bare.

Both run in one process on the same psycopg async pool, against the same seeded database:

* **enforced**: ``Mediator.call_tool("list_tickets", {"limit": 20})`` with a verified token:
  token check (signature verified once per token, time claims every call), then one statement
  of ``tenantgate.call_tool``: session, catalog and scope, arguments, rate limit, credit spend,
  the tool's function under RLS, shaping by data class, its audit row; then JSON encoding.
* **bare**: the very same ``list_tickets`` statement (tools/demo.yaml) with the same
  parameters, one autocommit statement as a superuser (no RLS), rows fetched and nothing else.
* **bare + context**: the statement under the enrolled table's RLS, as the tool role with the
  gate's context set, in one pipelined transaction on the same pool.

Read p50/p99 at concurrency 1 and calls/s at concurrency 8, and the ratio enforced / bare.
Round trips per call are counted on the wire (Sync + simple Query messages through a counting
proxy): the goal for an enforced read is at most 2. The uncached cost of verifying an ES256 token
(a new token per call) is reported on its own line.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg_pool import AsyncConnectionPool

from bench._common import (
    BenchDatabase,
    Result,
    create_database,
    run_script,
    summary_ms,
)
from bench._wire import WireCounter
from tenantgate.cli import pgserver
from tenantgate.mediator.db import make_pool
from tenantgate.mediator.demo_data import ALL_SCOPES, seed
from tenantgate.mediator.service import Mediator
from tenantgate.mediator.sessions import SessionManager
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import TokenSigner, TokenVerifier

ISSUER = "https://bench.invalid"
AUDIENCE = "http://127.0.0.1:8765/mcp"
TOOL = "list_tickets"
ARGS: dict[str, Any] = {"limit": 20}
# tools/demo.yaml's list_tickets statement with no status filter and no page cursor
STATEMENT = (
    "select ticket_id, subject, status, priority, created_at, updated_at from demo.tickets"
    " where org_id = %(org)s and customer_id = %(cust)s order by ticket_id desc limit %(limit)s"
)



class Harness:
    """A seeded database, a signer, a token for Acme and a started Mediator."""

    def __init__(self, db: BenchDatabase, key_dir: Path) -> None:
        self.db = db
        self.world = seed(
            db.superuser_dsn, credits=1_000_000_000, rate_burst=1_000_000, rate_per_second=1e6
        )
        key = ec.generate_private_key(ec.SECP256R1())
        self.pub = key_dir / "bench.pub.pem"
        self.pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.signer = TokenSigner(
            issuer=ISSUER, audience=AUDIENCE, private_key=key, algorithm="ES256"
        )
        org = self.world.northwind
        self.sessions = SessionManager(db.dsn_for("tenantgate_session_manager"), self.signer)
        self.opened = self.sessions.open(
            org_id=org.org_id,
            operator_id=org.operator_id,
            connector_id=org.connector_id,
            customer_id=org.customers["Acme"].customer_id,
            scopes=ALL_SCOPES,
            ttl_seconds=3600,
        )

    def settings(self, dsn: str | None = None, pool: int = 8, **extra: Any) -> Settings:
        return Settings(
            database_url=dsn or self.db.mediator_dsn,
            issuer=ISSUER,
            audience=AUDIENCE,
            jwt_public_key_file=self.pub,
            pool_min_size=pool,
            pool_max_size=pool,
            **extra,
        )


def _bare_call(
    m: Mediator, token: str, pool: AsyncConnectionPool[Any], context: bool = False
) -> Callable[[], Awaitable[None]]:
    """The statement alone on `pool` (a superuser pool): bare (no RLS), or with `context` as
    the tool role under RLS with the gate's settings (begin, context, statement, commit; one
    round trip)."""
    claims = m.authenticate(token)
    params = {"org": str(claims.org_id), "cust": str(claims.customer_id), "limit": ARGS["limit"]}

    async def bare() -> None:
        async with pool.connection() as conn:
            if context:
                async with conn.pipeline():
                    await conn.execute("begin")
                    await conn.execute("set local role tenantgate_tool")
                    await conn.execute(
                        "select set_config('app.org_id', %(org)s, true),"
                        " set_config('app.customer_id', %(cust)s, true)",
                        params,
                    )
                    cur = await conn.execute(STATEMENT, params)
                    await conn.execute("commit")
            else:
                cur = await conn.execute(STATEMENT, params)
            if not await cur.fetchall():
                raise AssertionError("bare query read nothing")

    return bare


Variants = dict[str, Callable[[], Awaitable[None]]]
ENFORCED, BARE, BARE_CTX = "enforced (gate)", "bare (no RLS)", "bare + context (RLS)"


def _variants(m: Mediator, token: str, su_pool: AsyncConnectionPool[Any]) -> Variants:
    async def enforced() -> None:
        out = await m.call_tool(m.authenticate(token), TOOL, ARGS)
        if out["isError"]:
            raise AssertionError(f"enforced call failed: {out['content']}")

    return {
        ENFORCED: enforced,
        BARE: _bare_call(m, token, su_pool),
        BARE_CTX: _bare_call(m, token, su_pool, context=True),
    }


async def _latency(v: Variants, n: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in v}
    order = list(v)
    for i in range(n + 50):
        order.reverse() if i % 2 else order.insert(0, order.pop())
        for label in order:
            t0 = time.perf_counter()
            await v[label]()
            if i >= 50:
                times[label].append(time.perf_counter() - t0)
    return times


async def _throughput(v: Variants, concurrency: int, seconds: float) -> dict[str, float]:
    rates: dict[str, float] = {}
    for label, call in v.items():
        done = [0]
        stop = time.perf_counter() + seconds

        async def worker(
            call: Callable[[], Awaitable[None]] = call, done: list[int] = done, stop: float = stop
        ) -> None:
            while time.perf_counter() < stop:
                await call()
                done[0] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rates[label] = done[0] / (time.perf_counter() - t0)
    return rates


async def _round_trips(h: Harness, calls: int) -> dict[str, float]:
    server = h.db.server
    counter = WireCounter(server.host, server.port)
    await counter.start()
    wire = {
        "host": "127.0.0.1",
        "port": str(counter.port),
        "sslmode": "disable",
        "gssencmode": "disable",
    }
    m = await Mediator.start(
        h.settings(
            dsn=h.db.server.dsn(
                h.db.name, user="tenantgate_mediator", password="bench-mediator", **wire
            ),
            pool=1,
        )
    )
    su_pool = make_pool(m.settings, dsn=server.dsn(h.db.name, **wire), min_size=1, max_size=1)
    await su_pool.open(wait=True)
    try:
        v = _variants(m, h.opened.token, su_pool)
        for call in v.values():
            await call()
        out: dict[str, float] = {}
        for label, call in v.items():
            counter.messages.clear()
            counter.counting = True
            for _ in range(calls):
                await call()
            counter.counting = False
            out[label] = counter.round_trips / calls
    finally:
        await su_pool.close()
        await m.close()
        await counter.close()
    return out


async def _measure(h: Harness, smoke: bool) -> Result:
    n, seconds = (200, 1.0) if smoke else (3000, 8.0)
    result = Result(
        "gate_overhead",
        f"Gate overhead in-process: enforced {TOOL} call vs the same template bare",
        smoke=smoke,
    )
    m = await Mediator.start(h.settings())
    su_pool = make_pool(m.settings, dsn=h.db.superuser_dsn, min_size=8, max_size=8)
    await su_pool.open(wait=True)
    try:
        v = _variants(m, h.opened.token, su_pool)
        times = await _latency(v, n)
        rates = await _throughput(v, 8, seconds)
    finally:
        await su_pool.close()
        await m.close()
    trips = await _round_trips(h, 50 if smoke else 200)
    stats = {k: summary_ms(t) for k, t in times.items()}
    for label in (BARE, BARE_CTX, ENFORCED):
        result.rows.append(
            {
                "call": label,
                **stats[label],
                "calls_per_s_at_8": round(rates[label]),
                "round_trips_per_call": round(trips[label], 2),
            }
        )
    e, b, c = stats[ENFORCED], stats[BARE], stats[BARE_CTX]
    result.ratios["enforced / bare p50 latency"] = e["p50_ms"] / b["p50_ms"]
    result.ratios["enforced / bare p99 latency"] = e["p99_ms"] / b["p99_ms"]
    result.ratios["enforced / bare + context p50 latency"] = e["p50_ms"] / c["p50_ms"]
    result.ratios["enforced / bare calls/s at concurrency 8"] = rates[ENFORCED] / rates[BARE]
    result.ratios["enforced round trips per call"] = trips[ENFORCED]
    verifier = TokenVerifier(h.settings())
    t_verify = []
    for _ in range(100 if smoke else 1000):
        t0 = time.perf_counter()
        verifier.verify(h.opened.token)
        t_verify.append(time.perf_counter() - t0)
    result.notes.append(
        "bare (no RLS) is the tool's statement as one autocommit statement on an identical "
        "pool connected as the superuser (the mediator role has no privilege on enrolled "
        "tables); bare + context runs it on that pool as tenantgate_tool under the table's "
        "policy, in one pipelined transaction with the gate's settings"
    )
    result.notes.append(
        f"ES256 token verification without the cache: p50 "
        f"{summary_ms(t_verify)['p50_ms']} ms (the mediator checks a token's "
        "signature once, then only its time claims)"
    )
    if trips[ENFORCED] > 2:
        result.notes.append(f"enforced read took {trips[ENFORCED]:.2f} round trips (goal: 2)")
    return result


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(create_database(server, "gate"), Path(tmp))
        return [asyncio.run(_measure(h, smoke))]


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
