"""HTTP-backed tool through the whole gate vs the bare upstream call, p50 side by side.

    python -m bench.http_gate_overhead [--calls 400]

One embedded PostgreSQL with the demo (the billing API on loopback, each customer's own sealed
key), then, interleaved call by call so both see the same machine load:
  bare     one GET of the fake billing API with Acme's key (httpx, keep-alive);
  gate     Gate.call("get_billing_status") for Acme's session: tenantgate.call_tool (session,
           catalog, rate limit, charge, audit, the sealed key), decrypt, egress checks, the same
           GET, shaping, tenantgate.upstream_outcome.
Prints p50/p99 of each and the p50 ratio and difference.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from tenantgate.cli.demo import _free_port, setup
from tenantgate.mediator.db import make_pool
from tenantgate.mediator.gate import Gate
from tenantgate.mediator.tokens import TokenVerifier


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000


async def _measure(calls: int) -> dict[str, float]:
    env = setup(_free_port(0), fixed_port=False)
    try:
        assert env.billing is not None
        with psycopg.connect(env.dsn("tenantgate_admin"), autocommit=True) as conn:
            conn.execute(
                "update tenantgate.tools set rate_burst = 100000, rate_per_second = 100000"
            )
            conn.execute("select tenantgate.grant_credits(%s, 1000000, 'bench')",
                         (env.world.northwind.org_id,))
        claims = TokenVerifier(env.settings).verify(env.open("Acme").token)
        pool = make_pool(env.settings, min_size=1, max_size=2)
        await pool.open(wait=True)
        gate = Gate(pool, env.settings)
        url = env.billing.base_url + "/v1/billing/status"
        key = env.billing.keys["Acme"].reveal()
        bare: list[float] = []
        gated: list[float] = []
        async with httpx.AsyncClient() as client:
            for i in range(calls + 20):
                t0 = time.perf_counter()
                r = await client.get(url, headers={"Authorization": f"Bearer {key}"})
                t1 = time.perf_counter()
                out = await gate.call(claims, "get_billing_status", {})
                t2 = time.perf_counter()
                assert r.status_code == 200
                assert out["customer"] == "Acme"
                if i >= 20:  # warm-up: connections, prepared statements, the key file
                    bare.append(t1 - t0)
                    gated.append(t2 - t1)
        await gate.close()
        await pool.close()
    finally:
        if env.billing is not None:
            env.billing.stop()
        env.server.stop()
        shutil.rmtree(env.workdir, ignore_errors=True)
    return {
        "bare_p50_ms": _pct(bare, 50),
        "bare_p99_ms": _pct(bare, 99),
        "gate_p50_ms": _pct(gated, 50),
        "gate_p99_ms": _pct(gated, 99),
        "ratio_p50": statistics.median(gated) / statistics.median(bare),
        "overhead_p50_ms": (statistics.median(gated) - statistics.median(bare)) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    result = asyncio.run(_measure(args.calls))
    for key, value in result.items():
        print(f"{key:18s} {value:8.3f}")


if __name__ == "__main__":
    main()
