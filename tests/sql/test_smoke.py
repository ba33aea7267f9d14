"""The fixture gives a migrated database whose roles can log in."""

from tests.factories import add_tenant, as_tool_role, call_tool, open_session, seed_demo_rows
from tests.pg import TestDatabase


def test_a_session_reads_its_own_ticket_rows(database: TestDatabase) -> None:
    tenant = add_tenant(database, credits=10)
    seed_demo_rows(database, tenant, tickets=3)
    session = open_session(database, tenant)
    with as_tool_role(database, session) as conn:
        assert conn.execute("select count(*) from demo.tickets").fetchone() == (3,)
    answer = call_tool(database, session, "list_tickets")
    assert answer["status"] == "ok"
    assert [t["ticket_id"] for t in answer["result"]["items"]] == [3, 2, 1]  # type: ignore[index]
