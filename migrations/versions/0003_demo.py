"""Formerly the demo schema; now a no-op.

The demo schema left the production migrations in 0006: a DBA's `db upgrade` no longer creates it.
`tenantgate demo` and the tests install it from sql/demo/ (see tenantgate/cli/demo_schema.py).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing: the demo schema is installed by `tenantgate demo` and the tests only."""


def downgrade() -> None:
    """Nothing to undo."""
