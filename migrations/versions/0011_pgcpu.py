"""Less PostgreSQL CPU per enforced call: the audit append reads its head and the waiting rows in
one statement, and audit_canonical is inlinable (sql/89_pgcpu).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import rerun_functions, run_sql_files

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Function bodies only (no table, constraint or grant changes): safe on a distributed cluster.
citus_online = True


def upgrade() -> None:
    run_sql_files("89_pgcpu/10_audit.sql")


def downgrade() -> None:
    # The bodies 0010 left: audit_canonical as 0002 made it, audit_append_row as 0010 made it.
    rerun_functions("40_functions/50_audit.sql", "tenantgate.audit_canonical")
    rerun_functions("89_audit_scale/20_seal.sql", "tenantgate.audit_append_row")
