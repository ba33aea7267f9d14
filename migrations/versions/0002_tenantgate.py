"""The tenantgate schema: tables, functions, policies and grants (sql/20..60).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import run_sql_files

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_files(
        "20_schema.sql",
        "30_tables/10_directory.sql",
        "30_tables/20_sessions.sql",
        "30_tables/30_credits.sql",
        "30_tables/40_secrets.sql",
        "30_tables/50_audit.sql",
        "40_functions/10_context.sql",
        "40_functions/20_trust_check.sql",
        "40_functions/30_sessions.sql",
        "40_functions/40_credits.sql",
        "40_functions/50_audit.sql",
        "40_functions/60_enrol.sql",
        "50_policies.sql",
        "60_grants.sql",
    )


def downgrade() -> None:
    run_sql_files("down/20_tenantgate.sql")
