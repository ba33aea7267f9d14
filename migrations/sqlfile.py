"""Apply files of the repository's sql/ folder from an Alembic revision, online or as --sql."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from alembic import op

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def sql_text(relative_path: str) -> str:
    """Return the text of one file under sql/, failing loudly if it is missing."""
    path = SQL_DIR / relative_path
    if not path.is_file():
        raise FileNotFoundError(f"migration needs {path}, which does not exist")
    return path.read_text(encoding="utf-8")


def run_sql_files(*relative_paths: str) -> None:
    """Execute each file whole, in order, inside the revision's transaction.

    Every colon is escaped so that SQLAlchemy's text() does not read ``:word`` (in casts, slices or
    comments) as a bind parameter; the statement then reaches Postgres byte for byte, and
    ``alembic upgrade head --sql`` prints it unchanged.
    """
    for relative_path in relative_paths:
        op.execute(sa.text(sql_text(relative_path).replace(":", "\\:")))
        # Files act as tenantgate_owner (`set local role`); Alembic's own bookkeeping must not.
        op.execute("reset role")


def rerun_function_files(*relative_paths: str) -> None:
    """Execute files again whose functions a later revision replaced, to put their bodies back.

    A downgrade uses it instead of restating those bodies: each line-leading ``create function``
    runs as ``create or replace function`` (same signature, so grants and comments stay). Only for
    files that define functions and comment on them; anything else in them must be re-runnable.
    """
    for relative_path in relative_paths:
        text = re.sub(r"^create function ", "create or replace function ",
                      sql_text(relative_path), flags=re.MULTILINE)
        op.execute(sa.text(text.replace(":", "\\:")))
        op.execute("reset role")
