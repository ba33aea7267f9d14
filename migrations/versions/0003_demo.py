"""The demo schema, enrolled with tenantgate.enrol_table (sql/70_demo.sql).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import run_sql_files

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_files("70_demo.sql")


def downgrade() -> None:
    run_sql_files("down/70_demo.sql")
