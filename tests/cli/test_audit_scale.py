"""`tenantgate audit seal | retire | verify --anchor | export`, as operators run them."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench._audit_fill import fill
from tenantgate.cli.audit import EXPORT_BATCH, stream_export
from tests import factories
from tests.cli.conftest import Invoke, as_json, ok
from tests.pg import TestDatabase

APPEND = ("select * from tenantgate.audit_append_row(%s, null, null, null, %s, 'list_tickets',"
          " 'allowed', '{}'::jsonb)")


def month_start(months_back: int) -> dt.datetime:
    first = dt.datetime.now(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(months_back):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return first


@pytest.fixture
def org(database: TestDatabase) -> str:
    return str(factories.add_tenant(database).org_id)


def test_seal_chains_the_rows_written_while_the_head_was_held(database: TestDatabase,
                                                             admin: Invoke, org: str) -> None:
    with database.connect(autocommit=True) as conn:
        conn.execute(APPEND, (org, "first"))
        with database.connect() as holder, holder.transaction():
            holder.execute("select 1 from tenantgate.audit_heads where org_id = %s for update",
                           (org,))
            for i in range(4):
                conn.execute(APPEND, (org, f"held-{i}"))
    [before] = as_json(admin("audit", "verify", "--json"))
    assert (before["rows_checked"], before["intact"], before["pending"]) == (1, True, 4)
    [sealed] = as_json(admin("audit", "seal", "--json"))
    assert (sealed["sealed"], sealed["head_seq"], sealed["still_pending"]) == (4, 5, 0)
    result = ok(admin("audit", "verify"))
    assert "5 rows in" in result.stderr
    assert "rows/s" in result.stderr
    assert "nothing pending" in ok(admin("audit", "seal")).stderr
    ok(admin("audit", "seal", "--follow", "--interval", "0.1", "--stop-after", "0.3"))


def test_retire_prints_anchors_that_verify_what_remains(database: TestDatabase, admin: Invoke,
                                                        dba: Invoke, org: str,
                                                        tmp_path: Path) -> None:
    with database.connect(autocommit=True) as su:
        for months_back in (3, 2, 1):
            fill(su, org, 200, month_start(months_back),
                 month_start(months_back - 1) - dt.timedelta(seconds=1), chunk=100)
    before = month_start(1).date().isoformat()
    listed = dba("audit", "retire", "--before", before)
    assert "nothing retired" in ok(listed).stderr
    cut = as_json(dba("audit", "retire", "--before", before, "--yes", "--json"))
    assert [(c["seq"], c["rows_retired"]) for c in cut] == [(200, 200), (400, 200)]
    anchors = tmp_path / "cut.json"
    anchors.write_text(json.dumps(cut))
    [chain] = as_json(admin("audit", "verify", "--anchor", str(anchors), "--json"))
    assert (chain["from_seq"], chain["rows_checked"], chain["intact"]) == (400, 200, True)
    [plain] = as_json(admin("audit", "verify", "--json"))  # from the cut the database kept
    assert (plain["rows_checked"], plain["last_seq"], plain["intact"]) == (200, 600, True)
    assert admin("audit", "retire", "--before", before, "--yes").exit_code == 1  # admin may not
    assert dba("audit", "retire", "--before", "soon", "--yes").exit_code == 2


def test_export_streams_in_batches_from_a_server_side_cursor(database: TestDatabase,
                                                             org: str) -> None:
    total = 3 * EXPORT_BATCH + 17
    with database.connect(autocommit=True) as su:
        fill(su, org, total, month_start(1), month_start(0) - dt.timedelta(seconds=1))

    class Probe(io.StringIO):
        """Records, at the first write, what the exporting backend last ran."""

        def __init__(self, pid: int) -> None:
            super().__init__()
            self.pid = pid
            self.first: tuple[int, str] | None = None

        def write(self, text: str) -> int:
            if self.first is None:
                with database.connect(autocommit=True) as other:
                    row = other.execute("select query from pg_stat_activity where pid = %s",
                                        (self.pid,)).fetchone()
                self.first = (text.count("\n"), str(row[0]) if row else "")
            return super().write(text)

    with database.connect("tenantgate_admin", autocommit=True) as conn:
        probe = Probe(conn.info.backend_pid)
        params: dict[str, Any] = {"org": org, "since": None, "until": None}
        written = stream_export(conn, params, probe)
    assert written == total
    assert probe.first is not None
    lines, query = probe.first
    assert lines == EXPORT_BATCH  # one batch was in hand, not the whole result
    assert query.upper().startswith("FETCH FORWARD")
    rows = [json.loads(line) for line in probe.getvalue().splitlines()]
    assert [r["seq"] for r in rows] == list(range(1, total + 1))


def test_export_of_a_missing_org_fails_clearly(admin: Invoke) -> None:
    result = admin("audit", "export", "--org", "no-such-org")
    assert result.exit_code != 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout or "x")


def test_verify_with_an_unreadable_anchor_file_says_what_it_should_be(
        admin: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"org_id": "x"}]')
    result = admin("audit", "verify", "--anchor", str(bad))
    assert result.exit_code == 1
    assert "audit heads --json" in result.stderr


def test_appends_through_the_gate_still_need_no_chain_lock_for_the_mediator(
        database: TestDatabase) -> None:
    """The mediator role gains nothing: no pending row, no seal (tests/sql has the full list)."""
    with (database.connect("tenantgate_mediator") as conn,
          pytest.raises(psycopg.errors.InsufficientPrivilege)):
        conn.execute("select * from tenantgate.audit_pending_orgs()")
