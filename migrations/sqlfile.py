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


def function_definition(relative_path: str, name: str) -> str:
    """The ``create function`` statement of `name` (schema-qualified) in a file under sql/.

    From its line-leading ``create [or replace] function name(`` to the first line that is
    ``$$;``, restated as ``create or replace``; fails loudly if the file defines it zero or
    several times, so a moved definition cannot be restored from the wrong place silently.
    """
    text = sql_text(relative_path)
    starts = [
        m.start()
        for m in re.finditer(
            rf"^create (?:or replace )?function {re.escape(name)}\(", text, flags=re.MULTILINE
        )
    ]
    if len(starts) != 1:
        raise ValueError(f"{relative_path} defines {name} {len(starts)} times, expected once")
    end = re.compile(r"^\$\$;$", flags=re.MULTILINE).search(text, starts[0])
    if end is None:
        raise ValueError(f"{relative_path}: the definition of {name} does not end with $$;")
    body = text[starts[0] : end.end()]
    return re.sub(r"^create function ", "create or replace function ", body)


def function_comment(relative_path: str, name: str) -> str | None:
    """The line-leading ``comment on function name(...)`` statement of a file under sql/, up to
    the first line ending in ``;``; None when the file has none for `name`."""
    text = sql_text(relative_path)
    found = re.search(rf"^comment on function {re.escape(name)}\(.*?;$", text,
                      flags=re.MULTILINE | re.DOTALL)
    return found.group(0) if found else None


def rerun_functions(relative_path: str, *names: str) -> None:
    """Put back the bodies of some functions of a file (as its owner), leaving the rest of it,
    with their comments when the file has them.

    For a downgrade whose revision replaced a few functions of a file that also holds
    statements that cannot run twice (tables, aggregates, triggers).
    """
    statements = [function_definition(relative_path, name) for name in names]
    statements += [c for name in names if (c := function_comment(relative_path, name))]
    _run_as_owner(statements)


def rerun_comments(relative_path: str, *names: str) -> None:
    """Put back the comments a file gives some functions (a later revision replaced them)."""
    statements = []
    for name in names:
        comment = function_comment(relative_path, name)
        if comment is None:
            raise ValueError(f"{relative_path} has no comment on {name}")
        statements.append(comment)
    _run_as_owner(statements)


def _run_as_owner(statements: list[str]) -> None:
    body = "\n\n".join(statements)
    op.execute(sa.text(f"set local role tenantgate_owner;\n\n{body}".replace(":", "\\:")))
    op.execute("reset role")
