"""One stateless 'mediator' process: gate calls through PgBouncer, outcomes counted as JSON.

Run as `python -m tests.citus._mediator_process CONFIG_JSON` (the tool and its arguments are
list_tickets and {} unless the config names others). Each call is what the mediator sends
per tool call: one autocommit statement of the gate's entry point with the token's org, customer
and session secret. The process keeps no state between calls; everything that must hold across
processes (credits, rate limits, sessions, request ids) lives in the database.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import psycopg
from psycopg.types.json import Jsonb

CALL = "select tenantgate.call_tool(%s, %s, %s, %s, %s, %s)"


def main(config: dict[str, object]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    with psycopg.connect(str(config["dsn"]), autocommit=True, prepare_threshold=None) as conn:
        for request_key in list(config["request_keys"]):  # type: ignore[call-overload]
            row = conn.execute(CALL, (config["org"], config["customer"], config["secret"],
                                      request_key, config.get("tool", "list_tickets"),
                                      Jsonb(config.get("arguments", {})))).fetchone()
            answer = row[0] if row else {}
            counts["replayed" if answer.get("replayed") else str(answer.get("status"))] += 1
    return dict(counts)


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
