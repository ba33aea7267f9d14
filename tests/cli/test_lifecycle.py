"""org, operator, connector, customer and tools: a customer's lifecycle through the command line."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests import factories
from tests.cli.conftest import Invoke, as_json, ok
from tests.pg import TestDatabase


def trust_rows(database: TestDatabase, session: factories.Session) -> int:
    """How many tools the mediator's tools/list (tenantgate.list_tools) gives a session now."""
    t = session.tenant
    with database.connect("tenantgate_mediator") as conn:
        row = conn.execute("select tenantgate.list_tools(%s, %s, %s)",
                           (t.org_id, t.customer_id, session.secret)).fetchone()
    assert row is not None
    return len(row[0])


@pytest.fixture
def acme(admin: Invoke) -> dict[str, Any]:
    """An org built entirely through the CLI: acme / ana@acme.example / crm / Globex (GX-1)."""
    org = as_json(admin("org", "add", "acme", "--credits", "100", "--json"))
    op = as_json(admin("operator", "add", "acme", "ana@acme.example", "--name", "Ana", "--json"))
    conn = as_json(admin("connector", "add", "acme", "crm", "--base-url",
                         "https://crm.example", "--json"))
    cust = as_json(admin("customer", "add", "acme", "crm", "Globex", "--external-ref", "GX-1",
                         "--json"))
    ok(admin("tools", "enable", "acme", "crm", "list_tickets", "--scope", "read:tickets"))
    ok(admin("tools", "enable", "acme", "crm", "update_ticket_status", "--scope",
             "write:tickets", "--cost", "2", "--side-effect"))
    return {"org": org, "operator": op, "connector": conn, "customer": cust}


def session_for(database: TestDatabase, acme: dict[str, Any]) -> factories.Session:
    tenant = factories.Tenant(uuid.UUID(acme["org"]["org_id"]),
                              uuid.UUID(acme["operator"]["operator_id"]),
                              uuid.UUID(acme["connector"]["connector_id"]),
                              uuid.UUID(acme["customer"]["customer_id"]))
    return factories.open_session(database, tenant, scopes=("read:tickets", "write:tickets"))


def test_org_add_and_list(admin: Invoke, acme: dict[str, Any]) -> None:
    [org] = as_json(admin("org", "list", "--json"))
    assert org["name"] == "acme"
    assert org["credits"] == 100
    assert (org["operators"], org["connectors"], org["customers"]) == (1, 1, 1)
    assert "acme" in ok(admin("org", "list")).stdout


def test_duplicate_org_name_is_one_line_error(admin: Invoke, acme: dict[str, Any]) -> None:
    result = admin("org", "add", "acme")
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_org_says_how_to_list_them(admin: Invoke) -> None:
    result = admin("operator", "list", "nobody")
    assert result.exit_code == 1
    assert "tenantgate org list" in result.stderr


def test_tools_list_shows_scope_cost_and_side_effect(admin: Invoke,
                                                      acme: dict[str, Any]) -> None:
    tools = {t["tool_name"]: t for t in as_json(admin("tools", "list", "acme", "crm", "--json"))}
    assert tools["update_ticket_status"]["required_scope"] == "write:tickets"
    assert tools["update_ticket_status"]["credit_cost"] == 2
    assert tools["update_ticket_status"]["side_effect"] is True
    assert tools["list_tickets"]["side_effect"] is False


def test_enable_refuses_a_tool_that_is_not_defined(admin: Invoke, acme: dict[str, Any]) -> None:
    result = admin("tools", "enable", "acme", "crm", "drop_everything", "--scope", "read:x")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no tool 'drop_everything' is defined" in result.stderr
    assert "tenantgate tools apply" in result.stderr
    assert "list_tickets" in result.stderr  # what is defined
    names = {t["tool_name"] for t in as_json(admin("tools", "list", "acme", "crm", "--json"))}
    assert "drop_everything" not in names


def test_enable_copies_the_definitions_defaults_unless_given(
        admin: Invoke, acme: dict[str, Any]) -> None:
    refund = as_json(admin("tools", "enable", "acme", "crm", "issue_refund", "--json"))
    assert (refund["required_scope"], refund["credit_cost"], refund["approval"],
            refund["side_effect"]) == ("write:refunds", 5, "operator", True)
    assert (refund["rate_burst"], refund["rate_per_second"]) == (30, 10.0)
    custom = as_json(admin("tools", "enable", "acme", "crm", "search_tickets", "--cost", "3",
                           "--approval", "host", "--rate-burst", "4", "--rate-per-second",
                           "0.5", "--scope", "read:search", "--json"))
    assert (custom["required_scope"], custom["credit_cost"], custom["approval"],
            custom["rate_burst"], custom["rate_per_second"]) == ("read:search", 3, "host", 4, 0.5)
    # an existing row keeps its settings; only the flags given change
    again = as_json(admin("tools", "enable", "acme", "crm", "search_tickets", "--rate-burst",
                          "9", "--json"))
    assert (again["credit_cost"], again["approval"], again["rate_burst"]) == (3, "host", 9)
    assert admin("tools", "enable", "acme", "crm", "search_tickets", "--approval",
                 "maybe").exit_code == 2


def test_disabled_tool_leaves_the_catalog_on_the_next_call(
        database: TestDatabase, admin: Invoke, acme: dict[str, Any]) -> None:
    session = session_for(database, acme)
    assert trust_rows(database, session) == 2
    ok(admin("tools", "disable", "acme", "crm", "update_ticket_status"))
    assert trust_rows(database, session) == 1
    ok(admin("tools", "enable", "acme", "crm", "update_ticket_status"))
    assert trust_rows(database, session) == 2


@pytest.mark.parametrize(("stop", "restart"), [
    (("customer", "pause", "acme", "GX-1"), ("customer", "resume", "acme", "GX-1")),
    (("customer", "revoke", "acme", "Globex"), ("customer", "resume", "acme", "Globex")),
    (("connector", "pause", "acme", "crm"), ("connector", "resume", "acme", "crm")),
    (("operator", "disable", "acme", "ana@acme.example"),
     ("operator", "enable", "acme", "ana@acme.example")),
    (("org", "pause", "acme"), ("org", "resume", "acme")),
])
def test_pausing_takes_effect_on_the_very_next_tool_call(
        database: TestDatabase, admin: Invoke, acme: dict[str, Any],
        stop: tuple[str, ...], restart: tuple[str, ...]) -> None:
    session = session_for(database, acme)
    assert trust_rows(database, session) == 2
    ok(admin(*stop))
    assert trust_rows(database, session) == 0
    ok(admin(*restart))
    assert trust_rows(database, session) == 2


def test_customer_list_filters_by_connector(admin: Invoke, acme: dict[str, Any]) -> None:
    ok(admin("connector", "add", "acme", "billing"))
    ok(admin("customer", "add", "acme", "billing", "Initech"))
    everyone = as_json(admin("customer", "list", "acme", "--json"))
    assert {c["name"] for c in everyone} == {"Globex", "Initech"}
    crm = as_json(admin("customer", "list", "acme", "--connector", "crm", "--json"))
    assert [c["name"] for c in crm] == ["Globex"]
    assert "Globex" in ok(admin("customer", "list", "acme")).stdout


def test_connector_and_operator_lists(admin: Invoke, acme: dict[str, Any]) -> None:
    [conn] = as_json(admin("connector", "list", "acme", "--json"))
    assert (conn["name"], conn["status"], conn["tools_enabled"]) == ("crm", "active", 2)
    assert as_json(admin("connector", "list", "--json"))[0]["org"] == "acme"
    [op] = as_json(admin("operator", "list", "acme", "--json"))
    assert (op["email"], op["status"]) == ("ana@acme.example", "active")
    ok(admin("operator", "disable", "acme", "ana@acme.example"))
    assert as_json(admin("operator", "list", "acme", "--json"))[0]["status"] == "disabled"


def test_other_orgs_names_do_not_resolve_across_orgs(admin: Invoke,
                                                    acme: dict[str, Any]) -> None:
    ok(admin("org", "add", "beta"))
    result = admin("customer", "pause", "beta", "GX-1")
    assert result.exit_code == 1
    assert "no customer 'GX-1'" in result.stderr


def test_every_command_has_help_with_an_example(admin: Invoke) -> None:
    from typer.main import get_command

    from tenantgate.cli.main import app
    from tests.cli.conftest import run

    root = get_command(app)
    groups = ["db", "org", "operator", "connector", "customer", "tools", "credits", "sessions",
              "approvals", "audit", "secrets"]
    for group in groups:
        sub = root.commands[group]  # type: ignore[attr-defined]
        for name in sub.commands:
            result = ok(run([group, name, "--help"]))
            assert "Example" in result.stdout, (group, name)
            assert "$ tenantgate" in result.stdout, (group, name)


def test_shell_completion_script_is_available() -> None:
    from tests.cli.conftest import run

    result = ok(run(["--show-completion", "bash"]))
    assert "_TENANTGATE_COMPLETE" in result.stdout
