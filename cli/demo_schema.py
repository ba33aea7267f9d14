"""Install the demo schema (sql/demo/) and its tools file (tools/demo.yaml) into a database.

Not part of the production migrations: `tenantgate demo` and the tests call this after
`db upgrade`, as a superuser or the owner of the tenantgate roles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cli.toolfile import compile as toolfile_compile
from cli.toolfile.spec import load

REPO = Path(__file__).resolve().parent.parent
DEMO_SQL = REPO / "sql" / "demo" / "10_schema.sql"
DEMO_TOOLS = REPO / "tools" / "demo.yaml"


def install_demo(conn: psycopg.Connection[Any]) -> int:
    """Create the demo schema and apply the demo tools; returns the tools file's version."""
    with conn.transaction():
        conn.execute(sql.SQL(DEMO_SQL.read_text(encoding="utf-8")))
        conn.execute("reset role")
    applied = toolfile_compile.apply(conn, [load(DEMO_TOOLS)])
    return int(applied["version"])
