"""The audit log at scale: appends without a chain lock, sealing, monthly partitions, resumable
verification (sql/89_audit_scale).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

from migrations.sqlfile import rerun_comments, rerun_functions, run_sql_files

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Not online on a distributed Citus cluster (audit_log is rebuilt as a partitioned table):
# `tenantgate db upgrade` refuses it there; apply it before `tenantgate db distribute`.
citus_online = False


def upgrade() -> None:
    run_sql_files(
        "89_audit_scale/10_tables.sql",
        "89_audit_scale/20_seal.sql",
        "89_audit_scale/30_verify.sql",
        "89_audit_scale/40_move_rows.sql",
        "89_audit_scale/90_grants.sql",
    )


def downgrade() -> None:
    run_sql_files("down/89_audit_scale.sql")
    # The head-lock append of 0006 and the row-by-row verifier of 0002, from where they are defined.
    rerun_functions("88_gate/40_call.sql", "tenantgate.audit_append_row")
    rerun_functions("40_functions/50_audit.sql", "tenantgate.audit_verify")
    rerun_comments("40_functions/50_audit.sql", "tenantgate.audit_append_row")
