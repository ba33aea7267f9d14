"""The mediator's data classes, rate limits, approvals and per-call admit (sql/80_mediator).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import run_sql_files

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_files(
        "80_mediator/10_data_classes.sql",
        "80_mediator/20_rate_limits.sql",
        "80_mediator/30_approvals.sql",
        "80_mediator/40_gate.sql",
        "80_mediator/90_grants.sql",
    )


def downgrade() -> None:
    run_sql_files("down/80_mediator.sql")
