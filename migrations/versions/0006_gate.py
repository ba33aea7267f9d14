"""The database is the gate: the tool role, tool definitions, and the one-statement entry points.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import run_sql_files

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_files(
        "88_gate/10_tool_role.sql",
        "88_gate/20_catalog.sql",
        "88_gate/30_arguments_and_shaping.sql",
        "88_gate/40_call.sql",
        "88_gate/90_grants.sql",
    )


def downgrade() -> None:
    run_sql_files("down/88_gate.sql")
