"""A platform engineer's own table and tool, served end to end without touching tenantgate's code.

The table is enrolled, its columns classified, the tool declared in the engineer's own tools file,
applied like a migration, enabled for a connector, and called by the MCP SDK's client over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tenantgate.cli.demo_schema import DEMO_TOOLS
from tenantgate.cli.toolfile import compile as toolfile_compile
from tenantgate.cli.toolfile.spec import load
from tenantgate.mediator.demo_data import World
from tests.mediator.conftest import OpenFn
from tests.pg import TestDatabase

pytestmark = pytest.mark.anyio

CRM = """
create schema crm;
create table crm.notes (
  org_id      uuid   not null,
  customer_id uuid   not null,
  note_id     bigint not null,
  body        text   not null,
  author      text   not null,
  internal_only text not null default '',
  primary key (org_id, customer_id, note_id)
);
select tenantgate.enrol_table('crm.notes');
insert into tenantgate.column_classes (relation, column_name, data_class) values
  ('crm.notes', 'note_id', 'public'), ('crm.notes', 'body', 'internal'),
  ('crm.notes', 'author', 'sensitive'), ('crm.notes', 'internal_only', 'secret');
"""

NOTES_TOOLS = """
version: 1
tools:
  list_notes:
    kind: sql
    title: Account notes
    description: Notes the account team wrote about the current customer.
    parameters:
      - {name: limit, type: integer, minimum: 1, maximum: 20, default: 10, description: How many.}
    statement: |
      select note_id, body, author, internal_only from crm.notes
      where org_id = :org_id and customer_id = :customer_id
      order by note_id desc limit :limit
    catalog: {scope: read:tickets, cost: 1}
"""


async def test_a_users_own_enrolled_table_and_tool_are_served_to_the_sdk_client(
    http_url: str,
    open_session: OpenFn,
    world: World,
    database: TestDatabase,
    tmp_path: Path,
) -> None:
    org = world.northwind
    acme, beta = org.customers["Acme"].customer_id, org.customers["Beta"].customer_id
    with database.connect(autocommit=True) as conn:
        conn.execute(CRM)
        for customer, body in ((acme, "acme renewal call"), (beta, "beta churn risk")):
            conn.execute(
                "insert into crm.notes (org_id, customer_id, note_id, body, author, internal_only)"
                " values (%s, %s, 1, %s, 'ana@northwind.example', 'do not share')",
                (org.org_id, customer, body),
            )
        tools_file = tmp_path / "crm-tools.yaml"
        tools_file.write_text(NOTES_TOOLS)
        toolfile_compile.apply(conn, [load(DEMO_TOOLS), load(tools_file)])
    with database.connect("tenantgate_admin", autocommit=True) as conn:
        conn.execute(
            "insert into tenantgate.tools (org_id, connector_id, tool_name, required_scope)"
            " values (%s, %s, 'list_notes', 'read:tickets')",
            (org.org_id, org.connector_id),
        )
    s = open_session("Acme", scopes=["read:tickets"])
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {s.token}"}, timeout=30)
    async with (
        http,
        Client(
            streamable_http_client(http_url, http_client=http), mode="legacy", cache=None
        ) as client,
    ):
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert "list_notes" in listed
        assert listed["list_notes"].input_schema["properties"]["limit"]["maximum"] == 20
        result = await client.call_tool("list_notes", {"limit": 5})
    assert not result.is_error, result.content
    items = result.structured_content["items"]
    assert items == [
        {"note_id": 1, "body": "acme renewal call", "author": "a***@northwind.example"}
    ]
