"""credits, sessions and approvals through the command line."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests import factories
from tests.cli.conftest import Invoke, as_json, ok, run
from tests.pg import TestDatabase


@pytest.fixture
def tenant(database: TestDatabase) -> factories.Tenant:
    return factories.add_tenant(database, credits=10)


def org_name(database: TestDatabase, tenant: factories.Tenant) -> str:
    with database.connect() as conn:
        row = conn.execute("select name from tenantgate.orgs where org_id = %s",
                           (tenant.org_id,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def signing_key(tmp_path: Path) -> tuple[Path, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "signing.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path, key.public_key()


def test_credit_grant_is_idempotent_on_its_request_id(admin: Invoke,
                                                      tenant: factories.Tenant) -> None:
    org = str(tenant.org_id)
    first = as_json(admin("credits", "grant", org, "50", "--request-id", "nov", "--json"))
    again = as_json(admin("credits", "grant", org, "50", "--request-id", "nov", "--json"))
    assert first["balance"] == again["balance"] == 60
    [shown] = as_json(admin("credits", "show", org, "--json"))
    assert shown["balance"] == 60
    ledger = as_json(admin("credits", "ledger", org, "--json"))
    newest = ledger[0]
    assert (newest["kind"], newest["amount"], newest["request_id"]) == ("grant", 50, "nov")
    assert len(ledger) == 2


def test_credit_ledger_shows_spends(database: TestDatabase, admin: Invoke,
                                    tenant: factories.Tenant) -> None:
    session = factories.open_session(database, tenant)
    with database.connect("tenantgate_admin") as conn:
        conn.execute("update tenantgate.tools set credit_cost = 3 where org_id = %s"
                     " and tool_name = 'list_tickets'", (tenant.org_id,))
    assert factories.call_tool(database, session, "list_tickets")["status"] == "ok"
    [spend, _grant] = as_json(admin("credits", "ledger", str(tenant.org_id), "--json"))
    assert (spend["kind"], spend["outcome"], spend["balance_after"]) == ("spend", "charged", 7)
    assert "list_tickets" in ok(admin("credits", "ledger", str(tenant.org_id))).stdout


def test_credit_grant_refuses_zero(admin: Invoke, tenant: factories.Tenant) -> None:
    assert admin("credits", "grant", str(tenant.org_id), "0").exit_code == 2


def test_session_open_prints_only_the_token_and_it_unlocks_the_trust_check(
        database: TestDatabase, admin: Invoke, tenant: factories.Tenant,
        signing_key: tuple[Path, ec.EllipticCurvePublicKey]) -> None:
    key_file, public_key = signing_key
    result = ok(admin("sessions", "open", str(tenant.org_id),
                      "--operator", str(tenant.operator_id),
                      "--connector", str(tenant.connector_id),
                      "--customer", str(tenant.customer_id),
                      "--scope", "read:tickets", "--ttl", "10m",
                      "--signing-key", str(key_file), "--audience", "http://mediator.test/mcp"))
    token = result.stdout.strip()
    assert "\n" not in token
    claims = jwt.decode(token, public_key, algorithms=["ES256"],
                        audience="http://mediator.test/mcp")
    assert claims["tg_org"] == str(tenant.org_id)
    assert claims["scope"] == "read:tickets"
    assert claims["exp"] - claims["iat"] == 600
    assert claims["tg_sid"] in result.stderr
    from tenantgate.mediator.settings import Settings
    from tenantgate.mediator.tokens import TokenVerifier

    public_file = key_file.with_suffix(".pub")
    public_file.write_bytes(public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    verified = TokenVerifier(Settings(jwt_public_key_file=public_file,
                                      audience="http://mediator.test/mcp")).verify(token)
    assert verified.session_id == claims["tg_sid"]
    with database.connect() as conn:  # only the hash is stored
        row = conn.execute("select secret_hash from tenantgate.sessions where session_id = %s",
                           (claims["tg_sid"],)).fetchone()
    assert row is not None
    assert bytes(row[0]) == hashlib.sha256(claims["tg_secret"].encode()).digest()
    assert claims["tg_secret"] not in result.stderr
    with database.connect("tenantgate_mediator") as conn:
        row = conn.execute("select tenantgate.list_tools(%s, %s, %s)",
                           (tenant.org_id, tenant.customer_id, claims["tg_secret"])).fetchone()
    assert row is not None
    assert [t["name"] for t in row[0]] == ["list_tickets"]  # the one tool its scope reaches


def test_session_open_by_names_with_json(database: TestDatabase, admin: Invoke,
                                         tenant: factories.Tenant,
                                         signing_key: tuple[Path, ec.EllipticCurvePublicKey]
                                         ) -> None:
    with database.connect() as conn:
        email, connector, customer = conn.execute(
            "select o.email, c.name, ca.name from tenantgate.operators o, tenantgate.connectors c,"
            " tenantgate.customer_accounts ca where o.org_id = %s and c.org_id = o.org_id"
            " and ca.org_id = o.org_id", (tenant.org_id,)).fetchone() or ("", "", "")
    opened = as_json(run(["sessions", "open", org_name(database, tenant), "--operator", email,
                          "--connector", connector, "--customer", customer, "--json"],
                         dsn=database.admin_dsn,
                         env={"TENANTGATE_JWT_PRIVATE_KEY_FILE": str(signing_key[0])}))
    assert opened["customer_id"] == str(tenant.customer_id)
    assert opened["token"].count(".") == 2


def test_session_open_for_a_paused_customer_fails_and_says_why(
        database: TestDatabase, admin: Invoke, tenant: factories.Tenant,
        signing_key: tuple[Path, ec.EllipticCurvePublicKey]) -> None:
    ok(admin("customer", "pause", str(tenant.org_id), str(tenant.customer_id)))
    result = admin("sessions", "open", str(tenant.org_id), "--operator", str(tenant.operator_id),
                   "--connector", str(tenant.connector_id), "--customer", str(tenant.customer_id),
                   "--signing-key", str(signing_key[0]))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "not active" in result.stderr


def test_session_open_without_a_signing_key_is_a_usage_error(admin: Invoke,
                                                             tenant: factories.Tenant) -> None:
    result = admin("sessions", "open", str(tenant.org_id), "--operator", str(tenant.operator_id),
                   "--connector", str(tenant.connector_id), "--customer", str(tenant.customer_id))
    assert result.exit_code == 2
    assert "--signing-key" in result.stderr


def test_session_list_end_and_purge(database: TestDatabase, admin: Invoke,
                                    tenant: factories.Tenant) -> None:
    session = factories.open_session(database, tenant)
    with factories.as_session(database, session) as conn:
        conn.execute("insert into tenantgate.session_messages (org_id, session_id, role, content)"
                     " values (%s, %s, 'user', 'hello')", (tenant.org_id, session.session_id))
    [listed] = as_json(admin("sessions", "list", str(tenant.org_id), "--json"))
    assert listed["session_id"] == str(session.session_id)
    assert listed["state"] == "open"
    assert "secret" not in " ".join(listed)
    ok(admin("sessions", "end", str(tenant.org_id), str(session.session_id)))
    assert factories_trust(database, session) == 0
    assert as_json(admin("sessions", "list", str(tenant.org_id), "--json")) == []
    [ended] = as_json(admin("sessions", "list", "--all", "--json"))
    assert ended["state"] == "ended"
    again = admin("sessions", "end", str(tenant.org_id), str(session.session_id))
    assert again.exit_code == 1
    purged = as_json(admin("sessions", "purge", "--json"))
    assert purged == {"sessions": 1, "messages": 0}
    assert as_json(admin("sessions", "list", "--all", "--json")) == []


def factories_trust(database: TestDatabase, session: factories.Session) -> int:
    """How many tools the session's catalog lists, asked as the mediator asks (list_tools)."""
    t = session.tenant
    with database.connect("tenantgate_mediator") as conn:
        row = conn.execute("select tenantgate.list_tools(%s, %s, %s)",
                           (t.org_id, t.customer_id, session.secret)).fetchone()
    assert row is not None
    return len(row[0])


def test_session_ttl_is_validated(admin: Invoke, tenant: factories.Tenant) -> None:
    result = admin("sessions", "open", str(tenant.org_id), "--operator", "x", "--connector", "y",
                   "--customer", "z", "--ttl", "forever")
    assert result.exit_code == 2
    assert "--ttl" in result.stderr


# -- approvals --------------------------------------------------------------------------------


ARGS = {"ticket_id": 1, "status": "solved"}


def pending_approval(database: TestDatabase, session: factories.Session) -> uuid.UUID:
    """The session asks for a side effect through the gate; the gate stores an approval."""
    answer = factories.call_tool(database, session, "update_ticket_status", ARGS)
    assert answer["status"] == "approval_required", answer
    assert answer["approver"] == "operator"
    return uuid.UUID(str(answer["approval_id"]))


@pytest.fixture
def writer(database: TestDatabase, tenant: factories.Tenant) -> factories.Session:
    factories.seed_demo_rows(database, tenant, tickets=1)
    return factories.open_session(database, tenant, scopes=("read:tickets", "write:tickets"))


def ticket_status(database: TestDatabase, tenant: factories.Tenant) -> str:
    with database.connect() as conn:
        row = conn.execute("select status from demo.tickets where org_id = %s"
                           " and customer_id = %s and ticket_id = 1",
                           (tenant.org_id, tenant.customer_id)).fetchone()
    assert row is not None
    return str(row[0])


def test_approvals_list_and_approve_by_another_operator_of_the_same_org(
        database: TestDatabase, admin: Invoke, tenant: factories.Tenant,
        writer: factories.Session) -> None:
    approval_id = pending_approval(database, writer)
    org = str(tenant.org_id)
    [pending] = as_json(admin("approvals", "list", org, "--json"))
    assert pending["approval_id"] == str(approval_id)
    assert pending["arguments"] == ARGS
    assert pending["preview"]["status"] == "open"  # the approver sees the target as it is now
    assert pending["expires_at"]
    assert "update_ticket_status" in ok(admin("approvals", "list", org)).stdout
    colleague = factories.add_operator(database, tenant.org_id)
    decided = as_json(admin("approvals", "approve", org, str(approval_id),
                            "--operator", str(colleague), "--json"))
    assert decided["status"] == "approved"
    assert as_json(admin("approvals", "list", org, "--json")) == []
    [answered] = as_json(admin("approvals", "list", org, "--all", "--json"))
    assert answered["status"] == "approved"
    assert ticket_status(database, tenant) == "open"  # nothing ran on the decision itself
    done = factories.call_tool(database, writer, "update_ticket_status", ARGS)
    assert done["status"] == "ok"
    assert ticket_status(database, tenant) == "solved"
    with database.connect() as conn:
        decisions = conn.execute(
            "select decision, operator_id from tenantgate.audit_log where org_id = %s"
            " and decision = 'approved'", (tenant.org_id,)).fetchall()
    assert decisions == [("approved", colleague)]  # the decision is an audit row


def test_the_requesting_operator_cannot_approve_their_own_request(
        database: TestDatabase, admin: Invoke, tenant: factories.Tenant,
        writer: factories.Session) -> None:
    approval_id = pending_approval(database, writer)
    org = str(tenant.org_id)
    own = admin("approvals", "approve", org, str(approval_id),
                "--operator", str(tenant.operator_id))
    assert own.exit_code == 1
    assert len(own.stderr.strip().splitlines()) == 1
    assert "cannot decide it (four eyes)" in own.stderr
    assert "another active operator" in own.stderr
    [still] = as_json(admin("approvals", "list", org, "--json"))
    assert still["status"] == "pending"
    assert factories.call_tool(database, writer, "update_ticket_status", ARGS)["status"] == (
        "approval_required")
    assert ticket_status(database, tenant) == "open"


def test_approvals_deny(database: TestDatabase, admin: Invoke, tenant: factories.Tenant,
                        writer: factories.Session) -> None:
    approval_id = pending_approval(database, writer)
    org = str(tenant.org_id)
    colleague = str(factories.add_operator(database, tenant.org_id))
    ok(admin("approvals", "deny", org, str(approval_id), "--operator", colleague))
    again = admin("approvals", "approve", org, str(approval_id), "--operator", colleague)
    assert again.exit_code == 1
    assert "no pending approval" in again.stderr
    # the agent hears "denied", not a new pending approval
    assert factories.call_tool(database, writer, "update_ticket_status", ARGS) == {
        "status": "denied", "approval_id": str(approval_id)}
    assert ticket_status(database, tenant) == "open"


def test_an_operator_of_another_org_cannot_approve(database: TestDatabase, admin: Invoke,
                                                   tenant: factories.Tenant,
                                                   writer: factories.Session) -> None:
    approval_id = pending_approval(database, writer)
    other = factories.add_tenant(database)
    # named in the wrong org: the operator does not resolve there
    wrong_org = admin("approvals", "approve", str(tenant.org_id), str(approval_id),
                      "--operator", str(other.operator_id))
    assert wrong_org.exit_code == 1
    # the right operator of the other org: the approval does not exist there
    cross = admin("approvals", "approve", str(other.org_id), str(approval_id),
                  "--operator", str(other.operator_id))
    assert cross.exit_code == 1
    [still] = as_json(admin("approvals", "list", str(tenant.org_id), "--json"))
    assert still["status"] == "pending"


def test_a_side_effect_on_another_customers_ticket_opens_no_approval(
        database: TestDatabase, admin: Invoke, tenant: factories.Tenant) -> None:
    other = factories.add_tenant(database)
    factories.seed_demo_rows(database, other, tickets=3)  # their ticket 1..3 exist; ours do not
    session = factories.open_session(database, tenant, scopes=("write:tickets",))
    answer = factories.call_tool(database, session, "update_ticket_status",
                                 {"ticket_id": 3, "status": "closed"})
    assert answer == {"status": "not_found"}
    assert as_json(admin("approvals", "list", str(tenant.org_id), "--all", "--json")) == []


def test_session_longer_than_the_mediator_accepts_is_refused(
        admin: Invoke, tenant: factories.Tenant,
        signing_key: tuple[Path, ec.EllipticCurvePublicKey]) -> None:
    result = admin("sessions", "open", str(tenant.org_id), "--operator", str(tenant.operator_id),
                   "--connector", str(tenant.connector_id), "--customer", str(tenant.customer_id),
                   "--ttl", "2h", "--signing-key", str(signing_key[0]))
    assert result.exit_code == 2
    assert "TENANTGATE_MAX_TOKEN_LIFETIME_SECONDS" in result.stderr


def test_session_token_in_development_mode_verifies_with_the_mediator(
        database: TestDatabase, tenant: factories.Tenant) -> None:
    from tenantgate.mediator.settings import Settings
    from tenantgate.mediator.tokens import TokenVerifier

    secret = "d" * 40
    result = run(["sessions", "open", str(tenant.org_id), "--operator", str(tenant.operator_id),
                  "--connector", str(tenant.connector_id), "--customer",
                  str(tenant.customer_id)], dsn=database.admin_dsn,
                 env={"TENANTGATE_DEV_HS256_SECRET": secret})
    assert result.exit_code == 0, result.stderr
    assert "DEVELOPMENT MODE" in result.stderr
    verifier = TokenVerifier(Settings(dev_hs256_secret=secret))  # type: ignore[arg-type]
    claims = verifier.verify(result.stdout.strip())
    assert claims.customer_id == str(tenant.customer_id)
