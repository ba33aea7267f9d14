"""Sessions: only the secret's hash is stored; ending and purging take the history with them."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from tests.factories import add_tenant, as_session, open_session
from tests.pg import TestDatabase


def test_the_database_stores_only_the_hash_of_the_session_secret(database: TestDatabase) -> None:
    session = open_session(database, add_tenant(database))
    with database.connect() as su:
        dump = su.execute(
            "select row_to_json(s)::text, secret_hash from tenantgate.sessions s"
        ).fetchone()
    assert dump is not None
    assert session.secret not in dump[0]
    assert bytes(dump[1]) == hashlib.sha256(session.secret.encode()).digest()


@pytest.mark.parametrize("ttl", ["0 seconds", "-1 minute", "25 hours"])
def test_sessions_outside_the_ttl_bounds_are_refused(database: TestDatabase, ttl: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="ttl"):
        open_session(database, add_tenant(database), ttl=ttl)


def test_invalid_scopes_are_refused(database: TestDatabase) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="invalid scope"):
        open_session(database, add_tenant(database), scopes=("read:tickets", "ALL; drop"))


def test_a_session_of_another_org_cannot_be_ended_by_naming_the_wrong_org(
    database: TestDatabase,
) -> None:
    mine, theirs = add_tenant(database), add_tenant(database)
    session = open_session(database, mine)
    with database.connect("tenantgate_session_manager") as conn:
        ended = conn.execute(
            "select tenantgate.end_session(%s, %s)", (theirs.org_id, session.session_id)
        ).fetchone()
    assert ended == (False,)
    with as_session(database, session) as conn:
        assert conn.execute("select tenantgate.current_session()").fetchone() == (
            session.session_id,
        )


def test_purge_removes_over_sessions_and_expired_history_but_keeps_live_ones(
    database: TestDatabase,
) -> None:
    tenant = add_tenant(database)
    live, ended, expired = (open_session(database, tenant) for _ in range(3))
    for session in (live, ended, expired):
        with as_session(database, session) as conn:
            conn.execute(
                "insert into tenantgate.session_messages (org_id, session_id, role, content)"
                " values (%s, %s, 'user', 'hi'), (%s, %s, 'assistant', 'old')",
                (tenant.org_id, session.session_id, tenant.org_id, session.session_id),
            )
    with database.connect() as su:
        su.execute(
            "update tenantgate.session_messages set expires_at = now() - interval '1 s'"
            " where session_id = %s and content = 'old'",
            (live.session_id,),
        )
        su.execute(
            "update tenantgate.sessions set ended_at = now() where session_id = %s",
            (ended.session_id,),
        )
        su.execute(
            "update tenantgate.sessions set created_at = now() - interval '1 hour',"
            " expires_at = now() - interval '1 s' where session_id = %s",
            (expired.session_id,),
        )
    with database.connect("tenantgate_session_manager") as conn:
        purged = conn.execute(
            "select sessions, messages from tenantgate.purge_sessions()"
        ).fetchone()
    assert purged == (2, 5)
    with database.connect() as su:
        assert su.execute("select session_id from tenantgate.sessions").fetchall() == [
            (live.session_id,)
        ]
        assert su.execute("select content from tenantgate.session_messages").fetchall() == [("hi",)]


def test_an_expired_message_is_invisible_before_any_purge(database: TestDatabase) -> None:
    tenant = add_tenant(database)
    session = open_session(database, tenant)
    with as_session(database, session) as conn:
        conn.execute(
            "insert into tenantgate.session_messages (org_id, session_id, role, content,"
            " expires_at) values (%s, %s, 'user', 'stale', now() - interval '1 s')",
            (tenant.org_id, session.session_id),
        )
    with as_session(database, session) as conn:
        assert conn.execute("select count(*) from tenantgate.session_messages").fetchone() == (0,)


def test_the_session_manager_can_only_open_end_and_purge(database: TestDatabase) -> None:
    with database.connect("tenantgate_session_manager") as conn:
        for statement in (
            "select * from tenantgate.sessions",
            "select * from demo.tickets",
            "select tenantgate.grant_credits(gen_random_uuid(), 1, 'x')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
