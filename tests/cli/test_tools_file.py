"""`tenantgate tools check / sql / apply`: a tools file is reviewed and applied like a migration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantgate.cli.demo_schema import DEMO_TOOLS
from tests import factories
from tests.cli.conftest import Invoke, as_json, ok
from tests.pg import TestDatabase

NOTES_TABLE = """
create schema crm;
create table crm.notes (org_id uuid not null, customer_id uuid not null, note_id int not null,
                        body text not null, primary key (org_id, customer_id, note_id));
create table crm.unenrolled (org_id uuid, customer_id uuid, body text);
"""

NOTES_TOOL = """\
version: 1
tools:
  list_notes:
    kind: sql
    description: The current customer's notes.
    parameters:
      - {name: limit, type: integer, minimum: 1, maximum: 20, default: 10, description: Rows.}
    statement: |
      select note_id, body from crm.notes
      where org_id = :org_id and customer_id = :customer_id
      order by note_id limit :limit
    access: read
    returns: many
    catalog: {scope: read:notes, cost: 1}
"""


def write(tmp_path: Path, text: str, name: str = "tools.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def demo_with(tmp_path: Path, extra: str) -> Path:
    """The demo tools file with one more tool (indented under `tools:`)."""
    return write(tmp_path, DEMO_TOOLS.read_text() + "\n" + extra)


@pytest.fixture
def notes(database: TestDatabase) -> None:
    """A user's own table, enrolled and classified, as a platform engineer would set it up."""
    with database.connect(autocommit=True) as su:
        su.execute(NOTES_TABLE)
        su.execute("select tenantgate.enrol_table('crm.notes')")
        su.execute("insert into tenantgate.column_classes (relation, column_name, data_class)"
                   " values ('crm.notes', 'note_id', 'public'), ('crm.notes', 'body', 'internal')")


def test_check_prints_one_ok_line_per_tool_with_its_columns_classes(dba: Invoke) -> None:
    result = ok(dba("tools", "check", str(DEMO_TOOLS)))
    lines = result.stdout.splitlines()
    assert len(lines) == 8
    assert all(line.startswith("OK ") for line in lines)
    profile = next(line for line in lines if line.startswith("OK get_customer_profile:"))
    assert "email sensitive" in profile
    assert "notes secret" in profile
    assert "8 tools OK" in result.stderr


def test_check_json_names_each_columns_source_and_class(dba: Invoke) -> None:
    report = {r["tool"]: r for r in as_json(dba("tools", "check", str(DEMO_TOOLS), "--json"))}
    health = report["account_health"]["columns"]
    assert health["open_tickets"] == {"source": "demo.tickets.status", "class": "public"}
    assert report["issue_refund"]["access"] == "write"
    assert report["issue_refund"]["approval"] == "operator"


def _tool(name: str, body: str) -> str:
    indented = "\n".join("    " + line if line else line for line in body.strip().splitlines())
    return f"  {name}:\n{indented}\n"


BROKEN = {
    "bad_yaml": ("tools:\n  x: [unclosed\n", "not valid YAML at line 3, column 1"),
    "tenant_parameter": (
        "tools:\n" + _tool("by_customer", """
description: Tickets of any customer.
parameters:
  - {name: customer_id, type: uuid, description: Whose.}
statement: select ticket_id from demo.tickets where org_id = :org_id and customer_id = :customer_id
catalog: {scope: read:tickets}
"""),
        "names a tenant",
    ),
    "tenant_parameter_by_another_name": (
        "tools:\n" + _tool("by_account", """
description: Tickets of an account.
parameters:
  - {name: account_id, type: uuid, description: Whose.}
statement: select ticket_id from demo.tickets where org_id = :org_id and customer_id = :customer_id
catalog: {scope: read:tickets}
"""),
        "names a tenant",
    ),
    "unbounded_string": (
        "tools:\n" + _tool("find", """
description: Find tickets.
parameters:
  - {name: query, type: string, description: Text.}
statement: |
  select ticket_id from demo.tickets
  where org_id = :org_id and customer_id = :customer_id and subject = :query
catalog: {scope: read:tickets}
"""),
        "needs maxLength",
    ),
    "unbounded_integer": (
        "tools:\n" + _tool("page", """
description: A page of tickets.
parameters:
  - {name: lim, type: integer, description: Rows.}
statement: |
  select ticket_id from demo.tickets
  where org_id = :org_id and customer_id = :customer_id limit :lim
catalog: {scope: read:tickets}
"""),
        "needs minimum and maximum",
    ),
    "not_enrolled": (
        "tools:\n" + _tool("leak", """
description: Reads a table tenantgate does not guard.
statement: select body from crm.unenrolled where org_id = :org_id and customer_id = :customer_id
catalog: {scope: read:tickets}
"""),
        "touches tables that are not enrolled: crm.unenrolled",
    ),
    "read_tool_that_writes": (
        "tools:\n" + _tool("sneaky", """
description: Says it reads.
statement: |
  update demo.tickets set status = 'closed'
  where org_id = :org_id and customer_id = :customer_id returning ticket_id
access: read
catalog: {scope: read:tickets}
"""),
        "writes, but the tool says access: read",
    ),
    "unclassified_column": (
        "tools:\n" + _tool("odd", """
description: A computed column nobody classified.
statement: |
  select ticket_id, pg_catalog.md5(subject) as fingerprint from demo.tickets
  where org_id = :org_id and customer_id = :customer_id
catalog: {scope: read:tickets}
"""),
        "output column 'fingerprint' has no source table",
    ),
    "missing_customer_filter": (
        "tools:\n" + _tool("org_wide", """
description: Every ticket of the org.
statement: select ticket_id from demo.tickets where org_id = :org_id
catalog: {scope: read:tickets}
"""),
        "missing: customer_id",
    ),
    "two_statements": (
        "tools:\n" + _tool("twice", """
description: Two statements.
statement: |
  select ticket_id from demo.tickets where org_id = :org_id and customer_id = :customer_id;
  select 1
catalog: {scope: read:tickets}
"""),
        "exactly one statement",
    ),
    "undeclared_placeholder": (
        "tools:\n" + _tool("stray", """
description: Uses a parameter it does not declare.
statement: |
  select ticket_id from demo.tickets
  where org_id = :org_id and customer_id = :customer_id and status = :status
catalog: {scope: read:tickets}
"""),
        ":status is neither a declared parameter",
    ),
    "statement_the_database_refuses": (
        "tools:\n" + _tool("typo", """
description: Selects a column that does not exist.
statement: |
  select ticket_no from demo.tickets where org_id = :org_id and customer_id = :customer_id
catalog: {scope: read:tickets}
"""),
        "the database refused its statement",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("command", ["check", "sql", "apply"])
def test_a_broken_tools_file_is_one_clear_line_and_changes_nothing(
        database: TestDatabase, dba: Invoke, notes: None, tmp_path: Path, case: str,
        command: str) -> None:
    text, expected = BROKEN[case]
    path = write(tmp_path, "version: 1\n" + text if not text.startswith("tools:\n  x:") else text)
    result = dba("tools", command, str(path))
    assert result.exit_code == 1, result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.output
    with database.connect() as su:
        versions = su.execute("select count(*) from tenantgate.tool_applications").fetchone()
    assert versions == (1,)  # only the demo install


def test_a_missing_file_is_one_line(dba: Invoke, tmp_path: Path) -> None:
    result = dba("tools", "check", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "cannot read it" in result.stderr


def test_sql_prints_what_apply_would_run_and_applies_nothing(
        database: TestDatabase, dba: Invoke, notes: None, tmp_path: Path) -> None:
    path = demo_with(tmp_path, NOTES_TOOL.split("tools:\n", 1)[1])
    script = ok(dba("tools", "sql", str(path))).stdout
    assert "create or replace function tenantgate_tools.list_notes(" in script
    assert "set local role tenantgate_tool;" in script
    assert "grant execute on function tenantgate_tools.list_notes(uuid, uuid, jsonb) to " \
        "tenantgate_owner;" in script
    assert "removed: none" in script
    with database.connect() as su:
        defined = su.execute("select count(*) from tenantgate.tool_definitions"
                             " where tool_name = 'list_notes'").fetchone()
    assert defined == (0,)


def test_apply_twice_is_idempotent_and_each_application_is_a_version(
        database: TestDatabase, dba: Invoke, notes: None, tmp_path: Path) -> None:
    path = demo_with(tmp_path, NOTES_TOOL.split("tools:\n", 1)[1])
    first = as_json(dba("tools", "apply", str(path), "--json"))
    with database.connect() as su:
        before = su.execute("select tool_name, spec_hash from (select tool_name,"
                            " md5(row(kind, parameters, input_schema, columns, statement_sha256,"
                            " default_scope)::text) as spec_hash from tenantgate.tool_definitions)"
                            " d order by 1").fetchall()
    second = as_json(dba("tools", "apply", str(path), "--json"))
    assert second["version"] == first["version"] + 1 == 3  # 1 is the demo install
    assert first["tools"] == second["tools"]
    assert "list_notes" in second["tools"]
    assert second["removed"] == []
    with database.connect() as su:
        after = su.execute("select tool_name, spec_hash from (select tool_name,"
                           " md5(row(kind, parameters, input_schema, columns, statement_sha256,"
                           " default_scope)::text) as spec_hash from tenantgate.tool_definitions)"
                           " d order by 1").fetchall()
        history = su.execute("select version, tools, removed from tenantgate.tool_applications"
                             " order by version").fetchall()
        functions = su.execute("select count(*) from pg_proc p join pg_namespace n"
                               " on n.oid = p.pronamespace where n.nspname = 'tenantgate_tools'"
                               " and p.proname = 'list_notes'").fetchone()
    assert before == after
    assert [h[0] for h in history] == [1, 2, 3]
    assert functions == (1,)
    human = ok(dba("tools", "apply", str(path))).stdout
    assert "applied version 4" in human
    assert "tenantgate tools enable" in human


def test_a_tool_removed_from_the_file_is_dropped_with_its_catalog_rows(
        database: TestDatabase, dba: Invoke, admin: Invoke, tmp_path: Path) -> None:
    tenant = factories.add_tenant(database)
    with database.connect("tenantgate_admin") as conn:
        conn.execute("insert into tenantgate.tools (org_id, connector_id, tool_name,"
                     " required_scope) values (%s, %s, 'issue_refund', 'write:refunds')",
                     (tenant.org_id, tenant.connector_id))
    text = DEMO_TOOLS.read_text()
    without = text[:text.index("  issue_refund:")]
    applied = as_json(dba("tools", "apply", str(write(tmp_path, without)), "--json"))
    assert applied["removed"] == ["issue_refund"]
    with database.connect() as su:
        left = su.execute(
            "select (select count(*) from tenantgate.tool_definitions"
            "        where tool_name = 'issue_refund'),"
            " (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            "   where n.nspname = 'tenantgate_tools' and p.proname like 'issue_refund%%'),"
            " (select count(*) from tenantgate.tools where tool_name = 'issue_refund')"
        ).fetchone()
    assert left == (0, 0, 0)
    refused = admin("tools", "enable", str(tenant.org_id), str(tenant.connector_id),
                    "issue_refund")
    assert refused.exit_code == 1
    assert "tenantgate tools apply" in refused.stderr


def test_only_the_gate_may_execute_an_applied_tool_function(
        database: TestDatabase, dba: Invoke, notes: None, tmp_path: Path) -> None:
    ok(dba("tools", "apply", str(demo_with(tmp_path, NOTES_TOOL.split("tools:\n", 1)[1]))))
    with database.connect() as su:
        rows = su.execute(
            "select r.rolname from pg_roles r where has_function_privilege(r.oid,"
            " 'tenantgate_tools.list_notes(uuid, uuid, jsonb)', 'execute') and not r.rolsuper"
            " and r.rolname like 'tenantgate%%' order by 1").fetchall()
        owner = su.execute("select pg_get_userbyid(proowner) from pg_proc"
                           " where proname = 'list_notes'").fetchone()
    # the gate (tenantgate_owner, whose call_tool runs it) and its NOLOGIN owner; no login role
    assert rows == [("tenantgate_owner",), ("tenantgate_tool",)]
    assert owner == ("tenantgate_tool",)
    with database.connect() as su:
        logins = su.execute("select rolcanlogin from pg_roles where rolname = 'tenantgate_tool'"
                            ).fetchone()
    assert logins == (False,)


def test_a_users_own_tool_is_served_after_apply_and_enable_without_touching_tenantgate(
        database: TestDatabase, dba: Invoke, admin: Invoke, notes: None,
        tmp_path: Path) -> None:
    mine = factories.add_tenant(database, credits=10)
    theirs = factories.add_tenant(database, credits=10)
    with database.connect(autocommit=True) as su:
        for tenant, body in ((mine, "mine"), (theirs, "theirs")):
            su.execute("insert into crm.notes values (%s, %s, 1, %s)",
                       (tenant.org_id, tenant.customer_id, body))
    ok(dba("tools", "check", str(write(tmp_path, NOTES_TOOL, "notes.yaml")),
           str(DEMO_TOOLS)))
    ok(dba("tools", "apply", str(DEMO_TOOLS), str(tmp_path / "notes.yaml")))
    enabled = as_json(admin("tools", "enable", str(mine.org_id), str(mine.connector_id),
                            "list_notes", "--json"))
    assert (enabled["required_scope"], enabled["credit_cost"]) == ("read:notes", 1)
    session = factories.open_session(database, mine, scopes=("read:notes",))
    answer = factories.call_tool(database, session, "list_notes", {"limit": 5})
    assert answer == {"status": "ok",
                      "result": {"items": [{"note_id": 1, "body": "mine"}], "truncated": False}}
    bad = factories.call_tool(database, session, "list_notes", {"limit": 500})
    assert bad["status"] == "invalid_arguments"
    # another org's session never reaches it: list_notes is not in its catalog
    other = factories.open_session(database, theirs, scopes=("read:notes",))
    assert factories.call_tool(database, other, "list_notes") == {"status": "not_found"}


def test_a_toolbox_postgres_sql_tool_loads_with_small_edits(
        dba: Invoke, tmp_path: Path) -> None:
    """Toolbox's kind, $n placeholders and `source` work; authServices become the context."""
    toolbox = """\
sources:
  my-pg:
    kind: postgres
    host: 127.0.0.1
tools:
  tickets_by_status:
    kind: postgres-sql
    source: my-pg
    description: Tickets with a status.
    parameters:
      - {name: status, type: string, maxLength: 10, description: Status.}
    statement: |
      select ticket_id, status from demo.tickets
      where org_id = :org_id and customer_id = :customer_id and status = $1
    catalog: {scope: read:tickets}
"""
    [report] = as_json(dba("tools", "check", str(write(tmp_path, toolbox)), "--json"))
    assert report["tool"] == "tickets_by_status"
    assert report["columns"]["status"]["class"] == "public"


def test_tools_file_commands_need_the_dba(database: TestDatabase, admin: Invoke,
                                          notes: None, tmp_path: Path) -> None:
    result = admin("tools", "apply", str(demo_with(tmp_path, NOTES_TOOL.split("tools:\n", 1)[1])))
    assert result.exit_code == 1
    assert "tenantgate db upgrade" in result.stderr or "permission denied" in result.stderr
    with database.connect() as su:
        versions = su.execute("select count(*) from tenantgate.tool_applications").fetchone()
    assert versions == (1,)



def test_check_and_apply_take_sql_and_http_tools_files_together(
        database: TestDatabase, dba: Invoke) -> None:
    billing = DEMO_TOOLS.parent / "billing.yaml"
    lines = ok(dba("tools", "check", str(DEMO_TOOLS), str(billing))).stdout.splitlines()
    http = next(line for line in lines if line.startswith("OK get_billing_status:"))
    assert http.startswith("OK get_billing_status: http read one")
    applied = as_json(dba("tools", "apply", str(DEMO_TOOLS), str(billing), "--json"))
    assert {"list_tickets", "get_billing_status"} <= set(applied["tools"])
    # applying the demo file alone removes the billing tools again
    again = as_json(dba("tools", "apply", str(DEMO_TOOLS), "--json"))
    assert "get_billing_status" in again["removed"]
