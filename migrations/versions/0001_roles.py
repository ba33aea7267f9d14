"""Roles: owner, mediator, session manager, admin (sql/10_roles.sql).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import run_sql_files

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_files("10_roles.sql")


def downgrade() -> None:
    run_sql_files("down/10_roles.sql")
