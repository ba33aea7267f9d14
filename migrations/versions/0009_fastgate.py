"""A cheaper gate per call, and credits and busy rate limits split into slots (sql/89_fastgate).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import rerun_function_files, run_sql_files

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Not online on a distributed Citus cluster (credit_accounts becomes a view over credit_slots):
# `tenantgate db upgrade` refuses it there; apply it before `tenantgate db distribute`.
citus_online = False


def upgrade() -> None:
    run_sql_files(
        "89_fastgate/10_credit_slots.sql",
        "89_fastgate/20_rate_slots.sql",
        "89_fastgate/30_call.sql",
    )


def downgrade() -> None:
    # The old tables and gate_tenant, then the function bodies 0009 replaced (spend_credits_for,
    # grant_credits, rate_try, call_tool) from the files that define them.
    run_sql_files("down/89_fastgate.sql")
    rerun_function_files("40_functions/40_credits.sql", "88_gate/40_call.sql")
