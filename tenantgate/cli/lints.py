"""Security lints: load the numbered SQL files of sql/lints/ and run them as typed findings."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from tenantgate.cli.schema_files import schema_root

LINTS_DIR = schema_root() / "sql" / "lints"
_NAME = re.compile(r"^(\d{2})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Lint:
    """One lint file: its name (without number), file name and the query."""

    name: str
    filename: str
    query: LiteralString

    @property
    def summary(self) -> str:
        """The first comment line after the name: what the lint finds."""
        first = self.query.lstrip().splitlines()[0]
        return first.lstrip("- ").split(":", 1)[-1].strip()


@dataclass(frozen=True, slots=True)
class Finding:
    """One row of a lint: what is wrong, with which object, why it matters and the SQL fix."""

    lint: str
    object: str
    why: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@cache
def load_lints(directory: Path = LINTS_DIR) -> tuple[Lint, ...]:
    """Every `NN_name.sql` under `directory`, in number order."""
    lints = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"lint file names look like 01_name.sql, got {path.name!r} instead")
        text: LiteralString = path.read_text(encoding="utf-8")  # our own files: trusted SQL
        lints.append(Lint(name=match.group(2), filename=path.name, query=text))
    if not lints:
        raise FileNotFoundError(f"no lint files in {directory}")
    return tuple(lints)


def run_lint(conn: psycopg.Connection[tuple[object, ...]], lint: Lint) -> list[Finding]:
    """The findings of one lint (empty when clean)."""
    with conn.cursor(row_factory=class_row(Finding)) as cur:
        cur.execute(sql.SQL(lint.query))
        return cur.fetchall()


def run_lints(conn: psycopg.Connection[tuple[object, ...]],
              only: tuple[str, ...] = ()) -> list[Finding]:
    """The findings of every lint (or of those named in `only`), in lint order."""
    findings: list[Finding] = []
    for lint in load_lints():
        if only and lint.name not in only:
            continue
        findings.extend(run_lint(conn, lint))
    return findings
