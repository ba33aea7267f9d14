"""What every command group shares: the DSN, connecting, errors that say what to do, output."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from psycopg import errors as pgerrors
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.table import Table

# Exit codes (documented in docs/cli.md): 0 ok, 1 findings or failure, 2 usage (click's own).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

DSN_ENV = ("TENANTGATE_DSN", "DATABASE_URL")
LIBPQ_ENV = ("PGHOST", "PGSERVICE", "PGDATABASE")

DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        help="Database to connect to (libpq URL or key=value). Default: $TENANTGATE_DSN, "
        "then $DATABASE_URL. Management commands expect the tenantgate_admin role.",
        show_default=False,
        envvar="TENANTGATE_DSN",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (one document) instead of a table.")
]

stdout = Console(highlight=False, soft_wrap=False)
stderr = Console(stderr=True, highlight=False)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print one line to stderr and exit with `code`."""
    typer.echo(f"tenantgate: {message}", err=True)
    raise typer.Exit(code)


def resolve_dsn(dsn: str | None) -> str:
    """--dsn, else $TENANTGATE_DSN, else $DATABASE_URL, else libpq's own PGHOST/PGSERVICE/...

    A usage error when none is set.
    """
    for value in (dsn, *(os.environ.get(name) for name in DSN_ENV)):
        if value:
            return value
    if any(os.environ.get(name) for name in LIBPQ_ENV):
        return ""  # like psql: libpq reads PGHOST, PGPORT, PGUSER, PGDATABASE, PGSERVICE
    fail("no database given: pass --dsn or export DATABASE_URL=postgresql://user@host/dbname",
         EXIT_USAGE)


def describe_target(dsn: str) -> str:
    """`user@host:port/dbname` of a DSN, never its password."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparsable DSN)"
    host = str(info.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(info.get("port") or os.environ.get("PGPORT") or "5432")
    user = str(info.get("user") or os.environ.get("PGUSER") or "")
    dbname = str(info.get("dbname") or os.environ.get("PGDATABASE") or user)
    return f"{user + '@' if user else ''}{host}:{port}/{dbname}"


def _reason(exc: psycopg.Error) -> str:
    """The last, most specific line of a connection error, without the libpq preamble."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    main = lines[0] if lines else type(exc).__name__
    main = re.sub(r"^connection failed: ", "", main)
    main = re.sub(r"^connection to server (at|on) .*? failed: ", "", main)
    main = re.sub(r"^(FATAL|ERROR):\s+", "", main)
    return main.rstrip(".")


def _hint(reason: str) -> str:
    low = reason.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return "check the user and password in --dsn / DATABASE_URL"
    if "does not exist" in low and "database" in low:
        return "check the database name, or create it first"
    if "refused" in low or "no such file" in low or "timeout" in low or "timed out" in low:
        return "is the server running and reachable there?"
    if "could not translate host name" in low or "name or service not known" in low:
        return "check the host name in --dsn / DATABASE_URL"
    return "check --dsn / DATABASE_URL"


@contextlib.contextmanager
def connect(dsn: str | None, *, autocommit: bool = True
            ) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection to the resolved DSN; a failure to connect is one line on stderr, exit 1."""
    target = resolve_dsn(dsn)
    try:
        conn = psycopg.connect(target, autocommit=autocommit, connect_timeout=10,
                               application_name="tenantgate-cli")
    except psycopg.ProgrammingError as exc:  # malformed conninfo
        fail(f"invalid DSN: {_reason(exc)}; pass --dsn postgresql://user@host:5432/dbname")
    except psycopg.Error as exc:
        reason = _reason(exc)
        fail(f"cannot connect to {describe_target(target)}: {reason} ({_hint(reason)})")
    with conn, database_errors():
        yield conn


_SQLSTATE_HINTS = {
    "42501": "permission denied: run this as tenantgate_admin (or the role the command needs)",
    "23505": "already exists",
    "23503": "refers to something that does not exist",
    "23514": "a value is out of range",
    "22P02": "a value is malformed",
    "P0002": "not found or inactive",
}


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """Turn any database error raised inside into one line on stderr and exit 1."""
    try:
        yield
    except psycopg.OperationalError as exc:
        fail(f"database connection lost: {_reason(exc)}")
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        diag = exc.diag
        message = (diag.message_primary or _reason(exc)).removeprefix("tenantgate: ")
        if isinstance(exc, pgerrors.UndefinedTable | pgerrors.InvalidSchemaName):
            fail(f"{message}: is the database migrated? run `tenantgate db upgrade` as the DBA")
        prefix = _SQLSTATE_HINTS.get(state)
        text = f"{prefix}: {message}" if prefix and prefix not in message else message
        if diag.message_hint:
            text += f" ({diag.message_hint})"
        fail(text)


# -- output ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID | dt.datetime | dt.date | dt.timedelta):
        return str(value) if not isinstance(value, dt.datetime | dt.date) else value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Compact-enough, stable JSON of rows (uuids, times and bytes as strings)."""
    return json.dumps(_jsonable(value), indent=2, sort_keys=False)


def to_json_line(value: Any) -> str:
    """One JSON document on one line (for JSON lines output)."""
    return json.dumps(_jsonable(value), separators=(",", ":"))


def emit_json(value: Any) -> None:
    typer.echo(to_json(value))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(_jsonable(value), sort_keys=True)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)


def emit_rows(rows: Sequence[dict[str, Any]], *, as_json: bool, title: str | None = None,
              columns: Sequence[str] | None = None, empty: str = "nothing to show") -> None:
    """Rows as JSON (a list of objects) or as a rich table."""
    if as_json:
        emit_json(list(rows))
        return
    if not rows:
        stderr.print(empty)
        return
    cols = list(columns or rows[0].keys())
    table = Table(title=title, show_lines=False)
    for col in cols:
        compact = col.endswith(("_id", "_at")) or col in ("status", "state", "kind")
        table.add_column(col, no_wrap=compact, overflow="ellipsis" if compact else "fold")
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in cols))
    # Piped to a file or a pager, do not squeeze the table into 80 columns.
    console = stdout if stdout.is_terminal else Console(highlight=False, width=200)
    console.print(table)


def emit_record(record: dict[str, Any], *, as_json: bool, message: str) -> None:
    """One record as JSON, or a one-line human message."""
    if as_json:
        emit_json(record)
    else:
        typer.echo(message)


def fetch_dicts(conn: psycopg.Connection[Any], query: Any, params: Any = None
                ) -> list[dict[str, Any]]:
    """Run a query and return its rows as dicts."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def epilog(*examples: str) -> str:
    """An 'Example' block for --help (rich markup keeps the lines apart)."""
    lines = "\n\n".join(f"  $ {e}" for e in examples)
    return f"[bold]Example[/bold]\n\n{lines}"
