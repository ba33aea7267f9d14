"""The mediator's read path to the verified customer's upstream credential (sql/85_secrets.sql).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from migrations.sqlfile import run_sql_files

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_files("85_secrets.sql")


def downgrade() -> None:
    op.execute("drop function if exists tenantgate.current_upstream_credential()")
