"""Credits under contention: 64 concurrent spenders on one org's balance, zero overspend.

Three ways to take one credit per attempt, each from the same number of threads (one connection
each), all hammering one balance row:

* ``unguarded UPDATE``: ``update ... set balance = balance - 1`` in autocommit; the raw cost of a
  contended row update and the baseline. It has no guard, so it overspends (the balance goes
  negative), which the table shows.
* ``conditional UPDATE``: the same with ``where balance >= 1`` (never overspends, no ledger).
* ``spend_credits``: tenantgate's function in a verified transaction (set the three settings,
  call it, commit; one pipelined round trip): claims the request id in the ledger, then takes the
  credit. Idempotent per request id, never below zero. Since the gate (issue 9) it is the
  owner's function, no longer the mediator's (``tenantgate.call_tool`` charges inline with the
  conditional UPDATE and one ledger row), so all three run as the superuser here.

Read ``attempts/s`` (higher is better) and the ratio ``spend_credits / unguarded UPDATE``: the
price of the ledger, the idempotency key and the verified context. ``overspend`` must be 0 for
every guarded row; the script exits non-zero otherwise.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable

import psycopg

from bench import _world
from bench._common import (
    BenchDatabase,
    Result,
    arg_parser,
    bench_server,
    create_database,
    print_result,
)
from tenantgate.cli import pgserver

SET_CONTEXT = (
    "select set_config('app.org_id', %s, true), set_config('app.customer_id', %s, true),"
    " set_config('app.session_secret', %s, true)"
)
SPEND = "select charged from tenantgate.spend_credits(%s, 1, 'bench')"

Attempt = Callable[[psycopg.Connection[tuple[object, ...]], str], bool]


def _hammer(dsn: str, spenders: int, attempts: int, attempt: Attempt) -> tuple[int, float]:
    """Run `attempts` calls of `attempt` in each of `spenders` threads; (successes, seconds)."""
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(spenders)]
    barrier = threading.Barrier(spenders + 1)
    won = [0] * spenders
    errors: list[BaseException] = []

    def run(i: int) -> None:
        conn = conns[i]
        barrier.wait()
        try:
            for n in range(attempts):
                if attempt(conn, f"{i}-{n}-{uuid.uuid4().hex[:8]}"):
                    won[i] += 1
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(spenders)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    if errors:
        raise errors[0]
    return sum(won), elapsed


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    return [measure(create_database(server, "credits"), smoke)]


def measure(db: BenchDatabase, smoke: bool = False) -> Result:
    spenders, attempts = (16, 20) if smoke else (64, 100)
    total = spenders * attempts
    balance = total * 3 // 4  # the last quarter of attempts must be refused
    with psycopg.connect(db.superuser_dsn, autocommit=True) as conn:
        _world.add_orgs(conn, 1, credits=balance)
        with conn.transaction():
            _world.add_customers(conn, 1)
        tenant = _world.sample_tenants(conn, 1)[0]
        conn.execute("create schema bench")
        conn.execute("create table bench.balances (id int primary key, balance bigint not null)")
        conn.execute("insert into bench.balances values (1, %s), (2, %s)", (balance, balance))

    def unguarded(conn: psycopg.Connection[tuple[object, ...]], _key: str) -> bool:
        conn.execute("update bench.balances set balance = balance - 1 where id = 1")
        return True

    def conditional(conn: psycopg.Connection[tuple[object, ...]], _key: str) -> bool:
        cur = conn.execute(
            "update bench.balances set balance = balance - 1"
            " where id = 2 and balance >= 1 returning balance"
        )
        return cur.fetchone() is not None

    def spend(conn: psycopg.Connection[tuple[object, ...]], key: str) -> bool:
        with conn.pipeline():
            conn.execute("begin")
            conn.execute(SET_CONTEXT, (tenant.org_id, tenant.customer_id, tenant.secret))
            cur = conn.execute(SPEND, (key,))
            conn.execute("commit")
        row = cur.fetchone()
        return bool(row and row[0])

    result = Result(
        "credits",
        f"Credits under contention: {spenders} spenders x {attempts} "
        f"attempts of 1 credit against a balance of {balance}",
        smoke=smoke,
    )
    rates: dict[str, float] = {}
    failed = False
    for label, attempt in (
        ("unguarded UPDATE", unguarded),
        ("conditional UPDATE", conditional),
        ("spend_credits", spend),
    ):
        won, seconds = _hammer(db.superuser_dsn, spenders, attempts, attempt)
        with psycopg.connect(db.superuser_dsn, autocommit=True) as conn:
            if label == "spend_credits":
                row = conn.execute(
                    "select balance from tenantgate.credit_accounts where org_id = %s",
                    (tenant.org_id,),
                ).fetchone()
                charged = conn.execute(
                    "select count(*) from tenantgate.credit_ledger where org_id = %s"
                    " and kind = 'spend' and outcome = 'charged'",
                    (tenant.org_id,),
                ).fetchone()
                assert charged is not None
                ledger_ok = charged[0] == won
            else:
                row = conn.execute(
                    "select balance from bench.balances where id = %s",
                    (1 if label.startswith("unguarded") else 2,),
                ).fetchone()
                ledger_ok = True
        assert row is not None
        final = int(row[0])
        overspend = (
            max(0, -final)
            if label.startswith("unguarded")
            else max(0, won - balance) + max(0, -final)
        )
        rates[label] = total / seconds
        result.rows.append(
            {
                "method": label,
                "attempts": total,
                "succeeded": won,
                "final_balance": final,
                "overspend": overspend,
                "attempts_per_s": round(total / seconds),
                "seconds": round(seconds, 2),
            }
        )
        if label != "unguarded UPDATE" and (
            overspend or won != balance or final != 0 or not ledger_ok
        ):
            failed = True
            result.notes.append(f"{label}: OVERSPEND OR LOST CREDITS (won={won}, final={final})")
    result.ratios["spend_credits / unguarded UPDATE (attempts/s)"] = (
        rates["spend_credits"] / rates["unguarded UPDATE"]
    )
    result.ratios["spend_credits / conditional UPDATE (attempts/s)"] = (
        rates["spend_credits"] / rates["conditional UPDATE"]
    )
    if not failed:
        result.notes.append(
            f"zero overspend: exactly {balance} charged, balance 0, "
            "ledger agrees; the unguarded baseline went negative as expected"
        )
    result.rows[0]["overspend"] = f"{result.rows[0]['overspend']} (no guard)"
    if failed:
        result.notes.append("FAILED")
    return result


def main() -> int:
    args = arg_parser(__doc__).parse_args()
    with bench_server(args.dsn) as server:
        result = measure(create_database(server, "credits"), smoke=args.smoke)
    print_result(result)
    if args.json:
        args.json.write_text(result.to_json())
    return 1 if "FAILED" in result.notes else 0


if __name__ == "__main__":
    sys.exit(main())
