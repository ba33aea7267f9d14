"""One stateless 'mediator' process: gate calls through PgBouncer, outcomes counted as JSON.

Run as `python -m tests.citus._mediator_process CONFIG_JSON`. Each call is what the mediator sends
per tool call: one autocommit statement of the gate's entry point with the token's org, customer
and session secret. The process keeps no state between calls; everything that must hold across
processes (credits, rate limits, sessions, request ids) lives in the database.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import psycopg

ADMIT = ("select balance, replayed, audit_seq from tenantgate.gate_admit("
         "%s, %s, %s, %s, %s, %s, %s, %s, %s, null)")
OUTCOME = {"TG402": "no_credit", "TG429": "rate_limited", "42501": "no_session"}


def main(config: dict[str, object]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    with psycopg.connect(str(config["dsn"]), autocommit=True, prepare_threshold=None) as conn:
        for request_id in list(config["request_ids"]):  # type: ignore[call-overload]
            try:
                row = conn.execute(ADMIT, (config["org"], config["customer"], config["secret"],
                                           request_id, "list_tickets", config["cost"],
                                           config["burst"], config["per_second"],
                                           config["take_rate"])).fetchone()
                counts["replayed" if row and row[1] else "ok"] += 1
            except psycopg.DatabaseError as exc:
                counts[OUTCOME.get(exc.sqlstate or "", f"error {exc.sqlstate}")] += 1
    return dict(counts)


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
