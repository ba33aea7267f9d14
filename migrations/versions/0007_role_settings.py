"""Time limits and log hygiene for the mediator and session-manager roles (sql/15_role_settings).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import run_sql_files

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_files("15_role_settings.sql")


def downgrade() -> None:
    run_sql_files("down/15_role_settings.sql")
