"""Role settings: timeouts on the login roles, and no session secret in the server log."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.factories import add_tenant, open_session
from tests.pg import TestDatabase

EXPECTED = {
    "statement_timeout": "15s",
    "lock_timeout": "5s",
    "idle_in_transaction_session_timeout": "30s",
    "log_parameter_max_length": "0",
    "log_parameter_max_length_on_error": "0",
}


def read_server_log(db: TestDatabase) -> str:
    """The server's log as text: the collector's file if there is one, else the pg_ctl log file."""
    with db.connect(autocommit=True) as su:
        row = su.execute("select pg_current_logfile()").fetchone()
        if row and row[0]:
            text = su.execute("select pg_read_file(%s)", (row[0],)).fetchone()
            return str(text[0]) if text else ""
    workdir = db.server._workdir
    if workdir is not None and (Path(workdir) / "server.log").is_file():
        return (Path(workdir) / "server.log").read_text(encoding="utf-8", errors="replace")
    pytest.skip("the server's log cannot be read here (no collector file, not a server we started)")


def wait_for_log(db: TestDatabase, marker: str, timeout: float = 10) -> str:
    """The log once `marker` shows up in it (the collector writes asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        log = read_server_log(db)
        if marker in log or time.monotonic() > deadline:
            return log
        time.sleep(0.1)


@pytest.mark.parametrize("role", ["tenantgate_mediator", "tenantgate_session_manager"])
def test_login_roles_carry_timeouts_and_no_parameter_logging(database: TestDatabase,
                                                             role: str) -> None:
    with database.connect(role) as conn:
        shown = {name: conn.execute(sql.SQL("show {}").format(sql.Identifier(name))).fetchone()
                 for name in EXPECTED}
    assert {name: row[0] if row else None for name, row in shown.items()} == EXPECTED


def entry_point_call(db: TestDatabase) -> str:
    """The gate's per-call function that takes the session secret, whichever this schema has."""
    with db.connect() as su:
        row = su.execute("select to_regprocedure("
                         "'tenantgate.list_tools(uuid, uuid, text)') is not null").fetchone()
    if row and row[0]:
        return "select tenantgate.list_tools(%(org)s, %(customer)s, %(secret)s)"
    return "select tenantgate.trust_check(%(org)s, %(connector)s, %(customer)s, %(secret)s)"


def test_session_secret_sent_as_bind_parameter_never_reaches_the_server_log(
        database: TestDatabase) -> None:
    session = open_session(database, add_tenant(database))
    tenant = session.tenant
    with database.connect(autocommit=True) as su:
        for name, value in (("log_statement", "all"), ("log_min_duration_statement", "0"),
                            ("log_parameter_max_length", "-1"),  # the DBA asks for everything
                            ("log_parameter_max_length_on_error", "-1")):
            su.execute(sql.SQL("alter database {} set {} = {}").format(
                sql.Identifier(database.name), sql.Identifier(name), sql.Literal(value)))
    marker = f"logmarker_{secrets.token_hex(8)}"
    params = {"org": tenant.org_id, "connector": tenant.connector_id,
              "customer": tenant.customer_id, "secret": session.secret}
    with database.connect("tenantgate_mediator", autocommit=True) as conn:
        conn.execute(f"select 1 /* {marker} mediator */")  # type: ignore[arg-type]
        conn.execute(entry_point_call(database), params)  # type: ignore[arg-type]
        conn.execute("select length(%s::text)", (session.secret,))
        # A failing statement: its parameters are logged under log_parameter_max_length_on_error.
        # (An error whose message echoes the value, like a bad uuid cast, is logged whatever
        # these settings say: nothing on the gate's path may cast or echo a secret.)
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("select length(%s::text) / 0", (session.secret,))
    manager_value = f"manager_{secrets.token_hex(16)}"
    with database.connect("tenantgate_session_manager", autocommit=True) as conn:
        conn.execute("select length(%s::text)", (manager_value,))
    # Control: the same logging shows a bind parameter in full for a role without the settings.
    control = f"control_{secrets.token_hex(16)}"
    with database.connect(autocommit=True) as su:
        su.execute("select length(%s::text)", (control,))

    log = wait_for_log(database, control)
    assert f"{marker} mediator" in log, "statement logging did not reach the log"
    assert control in log, "bind parameters are not logged at all here: the test proves nothing"
    assert session.secret not in log
    assert manager_value not in log


def test_a_call_waiting_on_a_held_org_lock_fails_after_lock_timeout_instead_of_hanging(
        database: TestDatabase) -> None:
    session = open_session(database, add_tenant(database, credits=10))
    t = session.tenant
    with database.connect() as holder:
        holder.execute("insert into tenantgate.audit_heads (org_id, seq, head_hash) values"
                       " (%s, 0, decode(repeat('00', 32), 'hex')) on conflict do nothing",
                       (t.org_id,))
        holder.commit()
        # Appends no longer wait for the org's chain head (SKIP LOCKED): hold what the call's
        # audit insert needs instead, as a stuck maintenance job would.
        holder.execute("lock table tenantgate.audit_log, tenantgate.audit_pending in share mode")
        # A client-side bound of 20s so that, without the role settings, the test fails
        # (QueryCanceled) instead of hanging; lock_timeout still comes from the role.
        with database.connect("tenantgate_mediator", autocommit=True,
                              options="-c statement_timeout=20s") as conn:
            started = time.monotonic()
            with pytest.raises(psycopg.errors.LockNotAvailable):
                conn.execute("select tenantgate.call_tool(%s, %s, %s, 'r1', 'list_tickets',"
                             " '{}'::jsonb)", (t.org_id, t.customer_id, session.secret))
            waited = time.monotonic() - started
        holder.rollback()
    assert 4 < waited < 14, waited  # lock_timeout (5s), well before statement_timeout (15s)
    with database.connect() as su:
        assert su.execute("select balance from tenantgate.credit_accounts where org_id = %s",
                          (t.org_id,)).fetchone() == (10,)  # the failed call charged nothing
