"""Install the demo schema (sql/demo/) and its tools file (tools/demo.yaml) into a database.

Not part of the production migrations: `tenantgate demo` and the tests call this after
`db upgrade`, as a superuser or the owner of the tenantgate roles.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from tenantgate.cli.schema_files import schema_root
from tenantgate.cli.toolfile import compile as toolfile_compile
from tenantgate.cli.toolfile.spec import load

ROOT = schema_root()  # the checkout, or where the wheel installed sql/ and tools/
DEMO_SQL = ROOT / "sql" / "demo" / "10_schema.sql"
DEMO_TOOLS = ROOT / "tools" / "demo.yaml"
BILLING_TOOLS = ROOT / "tools" / "billing.yaml"


def install_demo(conn: psycopg.Connection[Any], *, with_billing: bool = False) -> int:
    """Create the demo schema and apply the demo tools (and the HTTP-backed billing tools);
    returns the tools file's version."""
    with conn.transaction():
        conn.execute(sql.SQL(DEMO_SQL.read_text(encoding="utf-8")))
        conn.execute("reset role")
    files = [load(DEMO_TOOLS), *([load(BILLING_TOOLS)] if with_billing else [])]
    applied = toolfile_compile.apply(conn, files)
    return int(applied["version"])
