"""The OAuth authorization server's clients, codes and refresh tokens (sql/90_authz).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import run_sql_files

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_files("90_authz/10_authz.sql")


def downgrade() -> None:
    run_sql_files("down/90_authz.sql")
