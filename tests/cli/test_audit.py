"""`tenantgate audit`: tail (and follow), verify, heads, export and anomalies."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from tests import factories
from tests.cli.conftest import Invoke, as_json, ok
from tests.pg import TestDatabase


def append(database: TestDatabase, session: factories.Session, n: int, decision: str = "allowed",
           tool: str = "list_tickets", detail: str = '{"rows": 2}') -> None:
    with factories.as_gate(database, session) as conn:  # the owner's function, not the mediator's
        for i in range(n):
            conn.execute("select * from tenantgate.append_audit(%s, %s, %s, %s::jsonb)",
                         (f"req-{time.monotonic_ns()}-{i}", tool, decision, detail))


def deny(database: TestDatabase, session: factories.Session, n: int) -> None:
    """n tool calls with a wrong secret, as a host with a stale token makes them."""
    for _ in range(n):
        answer = factories.call_tool(database, session, "list_tickets", secret="stale")
        assert answer == {"status": "not_found"}


@pytest.fixture
def session(database: TestDatabase) -> factories.Session:
    return factories.open_session(database, factories.add_tenant(database))


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_tail_prints_the_newest_rows_oldest_first(database: TestDatabase, admin: Invoke,
                                                  session: factories.Session) -> None:
    append(database, session, 5)
    rows = json_lines(ok(admin("audit", "tail", "-n", "3", "--json")).stdout)
    assert [r["seq"] for r in rows] == [3, 4, 5]
    human = ok(admin("audit", "tail")).stdout.splitlines()
    assert len(human) == 5
    assert "#5 allowed" in human[-1]


def test_tail_filters_by_org_operator_tool_and_decision(database: TestDatabase, admin: Invoke,
                                                        session: factories.Session) -> None:
    append(database, session, 2)
    append(database, session, 1, tool="update_ticket_status", decision="approval_required")
    other = factories.open_session(database, factories.add_tenant(database))
    append(database, other, 4)
    org, operator = str(session.tenant.org_id), str(session.tenant.operator_id)
    assert len(json_lines(ok(admin("audit", "tail", "--org", org, "--json")).stdout)) == 3
    assert len(json_lines(ok(admin("audit", "tail", "--org", org, "--operator", operator,
                                   "--json")).stdout)) == 3
    only = json_lines(ok(admin("audit", "tail", "--decision", "approval_required",
                               "--json")).stdout)
    assert [r["tool_name"] for r in only] == ["update_ticket_status"]
    assert len(json_lines(ok(admin("audit", "tail", "--tool", "list_tickets", "--json")
                             ).stdout)) == 6
    assert admin("audit", "tail", "--decision", "maybe").exit_code == 2


def test_tail_follow_prints_rows_appended_later(database: TestDatabase, admin: Invoke,
                                                session: factories.Session) -> None:
    append(database, session, 1)
    later = threading.Timer(0.4, append, (database, session, 2))
    later.start()
    try:
        result = ok(admin("audit", "tail", "-f", "--interval", "0.1", "--stop-after", "1.5",
                          "--json"))
    finally:
        later.join()
    assert [r["seq"] for r in json_lines(result.stdout)] == [1, 2, 3]


def test_verify_is_clean_then_finds_an_edited_row(database: TestDatabase, admin: Invoke,
                                                  session: factories.Session) -> None:
    append(database, session, 4)
    [chain] = as_json(admin("audit", "verify", "--json"))
    assert (chain["rows_checked"], chain["intact"]) == (4, True)
    with database.connect() as conn:  # a superuser edits row 3 behind the triggers' back
        conn.execute("set session_replication_role = replica")
        conn.execute("update tenantgate.audit_log set detail = '{\"rows\": 999}'"
                     " where org_id = %s and seq = 3", (session.tenant.org_id,))
    result = admin("audit", "verify")
    assert result.exit_code == 1
    assert "1 broken" in result.stderr
    [broken] = as_json_exit1(admin("audit", "verify", "--json"))
    assert broken["first_broken_seq"] == 3
    assert "edited" in broken["problem"]


def as_json_exit1(result: object) -> list[dict[str, object]]:
    assert result.exit_code == 1  # type: ignore[attr-defined]
    return json.loads(result.stdout)  # type: ignore[attr-defined,no-any-return]


def test_verify_against_anchored_heads_finds_a_rewritten_chain(
        database: TestDatabase, admin: Invoke, session: factories.Session,
        tmp_path: Path) -> None:
    append(database, session, 3)
    anchor = tmp_path / "heads.json"
    anchor.write_text(ok(admin("audit", "heads", "--json")).stdout)
    ok(admin("audit", "verify", "--anchor", str(anchor)))
    # Rewrite the whole chain consistently (as someone who can also rewrite the head could).
    with database.connect() as conn:
        conn.execute("set session_replication_role = replica")
        org = session.tenant.org_id
        conn.execute("delete from tenantgate.audit_log where org_id = %s", (org,))
        conn.execute("delete from tenantgate.audit_heads where org_id = %s", (org,))
        conn.execute("set session_replication_role = origin")
        conn.execute("set role tenantgate_owner")
        for i in range(3):
            conn.execute("select tenantgate.audit_append_row(%s, null, null, null, %s,"
                         " 'list_tickets', 'allowed', '{}'::jsonb)", (org, f"forged-{i}"))
    ok(admin("audit", "verify"))  # internally consistent...
    result = admin("audit", "verify", "--anchor", str(anchor), "--json")
    [chain] = as_json_exit1(result)
    assert chain["first_broken_seq"] == 3  # ...but not the chain that was anchored
    assert "anchored" in chain["problem"]


def test_export_writes_json_lines_a_verifier_can_recompute(database: TestDatabase,
                                                          admin: Invoke,
                                                          session: factories.Session,
                                                          tmp_path: Path) -> None:
    append(database, session, 3)
    # a verified session's refusal is a chain row (an unverified caller's is not)
    assert factories.call_tool(database, session, "drop_everything") == {"status": "not_found"}
    deny(database, session, 1)
    out = tmp_path / "audit.jsonl"
    result = ok(admin("audit", "export", "--org", str(session.tenant.org_id), "--output",
                      str(out)))
    assert "exported 4 rows" in result.stderr
    rows = json_lines(out.read_text())
    previous = "00" * 32
    for row in rows:
        assert row["prev_hash"] == previous
        digest = hashlib.sha256(bytes.fromhex(str(row["prev_hash"]))
                                + str(row["canonical"]).encode()).hexdigest()
        assert digest == row["row_hash"]
        previous = str(row["row_hash"])
    streamed = json_lines(ok(admin("audit", "export")).stdout)
    assert streamed == rows
    assert json_lines(ok(admin("audit", "export", "--since", "2999-01-01")).stdout) == []


def test_anomalies_report_repeated_denials_and_bursts(database: TestDatabase, admin: Invoke,
                                                      session: factories.Session) -> None:
    ok(admin("audit", "anomalies"))  # nothing yet: exit 0
    deny(database, session, 6)
    append(database, session, 4)
    result = admin("audit", "anomalies", "--burst", "3", "--work-hours", "0-24", "--json")
    assert result.exit_code == 1
    found = {(a["kind"], a["operator"]): a for a in json.loads(result.stdout)}
    denied = found[("repeated_denials", "(unverified)")]
    assert denied["count"] == 6
    assert any(kind == "burst" for kind, _ in found)


def test_anomalies_report_off_hours_and_large_results(database: TestDatabase, admin: Invoke,
                                                      session: factories.Session) -> None:
    append(database, session, 2, detail='{"rows": 4000, "bytes": 100}')
    # every hour of the day is off-hours when work hours are an hour that has not started yet
    with database.connect() as conn:
        row = conn.execute("select extract(hour from now() at time zone 'UTC')::int").fetchone()
    hour = int(row[0]) if row else 0
    start = (hour + 1) % 23
    result = admin("audit", "anomalies", "--max-rows", "5000", "--work-hours",
                   f"{start}-{start + 1}", "--json")
    kinds = {a["kind"]: a for a in json.loads(result.stdout)}
    assert result.exit_code == 1
    assert kinds["off_hours"]["count"] == 2
    assert kinds["large_results"]["count"] == 8000
    assert "off_hours" in admin("audit", "anomalies", "--work-hours", f"{start}-{start + 1}"
                                ).stdout
    assert admin("audit", "anomalies", "--since", "soon").exit_code == 2
    assert admin("audit", "anomalies", "--timezone", "Mars/Olympus").exit_code == 2


def test_verify_finds_a_chain_whose_head_was_deleted(database: TestDatabase, admin: Invoke,
                                                     session: factories.Session) -> None:
    append(database, session, 2)
    with database.connect() as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute("delete from tenantgate.audit_heads where org_id = %s",
                     (session.tenant.org_id,))
    [chain] = as_json_exit1(admin("audit", "verify", "--json"))
    assert chain["first_broken_seq"] == 3
    assert "head" in chain["problem"]
