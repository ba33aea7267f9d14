"""What an HTTP-backed tool costs over the bare upstream call: p50 of the executor vs bare httpx.

    .venv/bin/python bench/http_tool_overhead.py [--smoke] [--calls 2000]

Both sides call the same fake billing API on loopback (tenantgate/mediator/fake_upstream.py), GET
/v1/billing/status, one pooled keep-alive client each, interleaved call by call so that machine
noise hits both alike. Three paths, side by side:

- ``bare``: ``httpx.AsyncClient.get`` with the key header, ``response.json()``;
- ``executor``: ``call_http_tool`` with the key already decrypted: egress check, DNS pin (an IP
  literal here, so no lookup), the request, streamed capped read, scrub, projection and shaping;
- ``executor+decrypt``: the same, the key unsealed from its pgcrypto ciphertext in the call, as the
  gate does it (tenantgate/mediator/secrets.py).

No database is involved: the gate's own cost is bench/gate_overhead.py. Prints p50/p99 per path
and the ratios executor/bare and executor+decrypt/bare.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/http_tool_overhead.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._common import Result, print_result, summary_ms
from tenantgate.mediator import secrets as customer_secrets
from tenantgate.mediator.fake_upstream import FakeBilling
from tenantgate.mediator.http_call import call_http_tool
from tenantgate.mediator.http_tools import load_http_tools
from tenantgate.mediator.keys import FileKeyProvider, Secret, generate_key_material
from tenantgate.mediator.shaping import DataPolicy
from tenantgate.mediator.upstream import EgressPolicy, UpstreamClient

REPO = Path(__file__).resolve().parent.parent
KEY = Secret("sk_live_bench_5d41402abc4b2a76b9719d911017c592")
ACCOUNT = {
    "customer": "Acme",
    "plan": "enterprise",
    "status": "active",
    "currency": "EUR",
    "balance_cents": 120_000,
    "notes": "renews in March",
    "billing_email": "ap@acme.example",
    "card": {"last4": "4242", "exp": "12/29"},
}
POLICY = DataPolicy(columns={}, scopes={"read:billing": "internal"})


async def measure(fake: FakeBilling, calls: int) -> dict[str, list[float]]:
    spec = load_http_tools((REPO / "tools" / "billing.yaml").read_text())["get_billing_status"]
    keys = FileKeyProvider({"k1": generate_key_material()}, "k1")
    ciphertext, key_id = customer_secrets.seal(KEY, keys)
    header = {"Authorization": f"Bearer {KEY.reveal()}"}
    url = f"{fake.base_url}/v1/billing/status"
    async with (
        httpx.AsyncClient(trust_env=False) as bare_client,
        UpstreamClient(EgressPolicy.parse(fake.base_url)) as client,
    ):

        async def bare() -> Any:
            response = await bare_client.get(url, headers=header)
            response.raise_for_status()
            return response.json()

        async def executor(key: Secret | Callable[[], Secret]) -> Any:
            outcome = await call_http_tool(
                spec,
                {},
                base_url=fake.base_url,
                auth_header="Authorization",
                key=key,
                client=client,
                policy=POLICY,
                scopes=["read:billing"],
            )
            return outcome.result

        paths: dict[str, Callable[[], Awaitable[Any]]] = {
            "bare": bare,
            "executor": lambda: executor(KEY),
            "executor+decrypt": lambda: executor(
                lambda: customer_secrets.unseal(ciphertext, key_id, keys)
            ),
        }
        timings: dict[str, list[float]] = {name: [] for name in paths}
        for path in paths.values():  # warm up: connections, imports, caches
            for _ in range(20):
                await path()
        for _ in range(calls):
            for name, path in paths.items():
                t0 = time.perf_counter()
                await path()
                timings[name].append(time.perf_counter() - t0)
        assert (await paths["executor"]())["customer"] == (await bare())["customer"]
    return timings


def run(server: object = None, smoke: bool = False, calls: int | None = None) -> list[Result]:
    """The benchmark (``server`` is unused: no database here; the signature run_all expects)."""
    n = calls or (50 if smoke else 2000)
    with FakeBilling({KEY.reveal(): ACCOUNT}) as fake:
        timings = asyncio.run(measure(fake, n))
    rows = [{"path": name, **summary_ms(t)} for name, t in timings.items()]
    p50 = {row["path"]: float(row["p50_ms"]) for row in rows}
    result = Result(
        name="http_tool_overhead",
        title="HTTP-backed tool: executor vs bare httpx call to the same upstream (loopback)",
        rows=rows,
        ratios={
            "executor_p50_over_bare": p50["executor"] / p50["bare"],
            "executor_decrypt_p50_over_bare": p50["executor+decrypt"] / p50["bare"],
        },
        notes=[
            f"{n} interleaved calls per path after 20 warm-up calls each",
            f"executor adds {p50['executor'] - p50['bare']:.3f} ms at p50; "
            f"decrypting the key adds {p50['executor+decrypt'] - p50['executor']:.3f} ms more",
        ],
        smoke=smoke,
    )
    return [result]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for CI")
    parser.add_argument("--calls", type=int, help="calls per path (default 2000, smoke 50)")
    args = parser.parse_args()
    for result in run(smoke=args.smoke, calls=args.calls):
        print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
