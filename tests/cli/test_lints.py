"""`tenantgate db check`: clean on a fresh migration, and each lint finds its planted defect."""

from __future__ import annotations

import json

import pytest

from tenantgate.cli import lints
from tests.cli.conftest import Invoke, ok, run
from tests.pg import TestDatabase


def plant(database: TestDatabase, *statements: str) -> None:
    with database.connect(autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def findings(dba: Invoke, lint: str | None = None) -> list[dict[str, str]]:
    args = ["db", "check", "--json", *(["--lint", lint] if lint else [])]
    result = dba(*args)
    found: list[dict[str, str]] = json.loads(result.stdout)
    assert result.exit_code == (1 if found else 0), result.stderr
    return found


def test_every_lint_file_is_numbered_and_says_why_it_matters() -> None:
    loaded = lints.load_lints()
    assert [lint.filename[:2] for lint in loaded] == [f"{i:02d}" for i in range(1, len(loaded) + 1)]
    for lint in loaded:
        header = lint.query.split("\nwith", 1)[0].split("\nselect", 1)[0]
        assert "Why it matters" in header, lint.filename


def test_freshly_migrated_database_has_no_findings(dba: Invoke, admin: Invoke) -> None:
    assert findings(dba) == []
    result = ok(admin("db", "check"))  # the admin role can run it too
    assert "0 findings" in result.stderr


def test_finding_exits_1_and_names_object_why_and_fix(database: TestDatabase,
                                                      dba: Invoke) -> None:
    plant(database, "alter table tenantgate.credit_ledger disable row level security")
    result = dba("db", "check")
    assert result.exit_code == 1
    assert "tenantgate.credit_ledger" in result.stdout
    assert "enable row level security" in result.stdout
    assert "1 finding" in result.stderr


def test_table_without_rls_is_found(database: TestDatabase, dba: Invoke) -> None:
    plant(database, "alter table tenantgate.credit_ledger disable row level security")
    [found] = findings(dba, "rls_disabled")
    assert found["object"] == "tenantgate.credit_ledger"
    assert found["fix"] == "alter table tenantgate.credit_ledger enable row level security;"


def test_table_with_rls_not_forced_is_found(database: TestDatabase, dba: Invoke) -> None:
    plant(database, "alter table demo.invoices no force row level security")
    [found] = findings(dba, "rls_not_forced")
    assert found["object"] == "demo.invoices"
    assert "owner" in found["why"]


def test_tenant_table_not_enrolled_is_found(database: TestDatabase, dba: Invoke) -> None:
    plant(database, "create table public.notes (org_id uuid, customer_id uuid, body text)",
          "alter table public.notes enable row level security",
          "alter table public.notes force row level security")
    [found] = findings(dba, "table_not_enrolled")
    assert found["object"] == "public.notes"
    assert "tenantgate.enrol_table('public.notes'" in found["fix"]


def test_the_fix_of_a_finding_resolves_it(database: TestDatabase, dba: Invoke) -> None:
    plant(database, "create table public.notes (org_id uuid, customer_id uuid, body text)")
    found = findings(dba)
    assert {f["lint"] for f in found} == {"rls_disabled", "table_not_enrolled"}
    plant(database, *(f["fix"] for f in found if f["lint"] == "table_not_enrolled"))
    assert findings(dba) == []


def test_definer_function_without_search_path_is_found(database: TestDatabase,
                                                       dba: Invoke) -> None:
    plant(database, "create function public.peek() returns bigint language sql security definer"
                    " as 'select count(*) from tenantgate.sessions'",
          "revoke execute on function public.peek() from public")
    [found] = findings(dba, "definer_mutable_search_path")
    assert found["object"] == "public.peek()"
    assert found["fix"] == "alter function public.peek() set search_path = pg_catalog, pg_temp;"


def test_definer_function_with_pg_temp_first_is_found(database: TestDatabase,
                                                      dba: Invoke) -> None:
    plant(database, "alter function tenantgate.trust_check(uuid, uuid, uuid, text)"
                    " set search_path = ''")
    [found] = findings(dba, "definer_mutable_search_path")
    assert found["object"] == "tenantgate.trust_check(p_org_id uuid, p_connector_id uuid," \
        " p_customer_id uuid, p_session_secret text)"
    assert "pg_temp" in found["why"]


def test_definer_function_executable_by_public_is_found(database: TestDatabase,
                                                        dba: Invoke) -> None:
    plant(database, "grant execute on function tenantgate.audit_verify(uuid) to public")
    [found] = findings(dba, "definer_public_execute")
    assert found["object"] == "tenantgate.audit_verify(p_org_id uuid)"
    assert found["fix"].startswith("revoke execute on function tenantgate.audit_verify(")


def test_bypassrls_login_acting_as_mediator_is_found(database: TestDatabase,
                                                     dba: Invoke) -> None:
    role = f"mediator_login_{database.name}"
    plant(database, f"create role {role} login bypassrls",
          f"grant tenantgate_mediator to {role}")
    try:
        [found] = findings(dba, "privileged_role_as_mediator")
        assert found["object"] == role
        assert "BYPASSRLS" in found["why"]
    finally:
        plant(database, f"drop role {role}")


def test_mediator_able_to_become_a_superuser_is_found(database: TestDatabase,
                                                      dba: Invoke) -> None:
    role = f"powerful_{database.name}"
    plant(database, f"create role {role} nologin superuser",
          f"grant {role} to tenantgate_mediator")
    try:
        [found] = findings(dba, "privileged_role_as_mediator")
        assert found["object"] == role
        assert found["fix"] == f"revoke {role} from tenantgate_mediator;"
    finally:
        plant(database, f"drop role {role}")


def test_object_owned_by_mediator_is_found(database: TestDatabase, dba: Invoke) -> None:
    plant(database, "create table public.scratch (a int)",
          "alter table public.scratch owner to tenantgate_mediator")
    [found] = findings(dba, "mediator_owns_objects")
    assert found["object"] == "table public.scratch"
    assert found["fix"] == "alter table public.scratch owner to tenantgate_owner;"


@pytest.mark.parametrize(("grant", "expected"), [
    ("grant select on tenantgate.live_sessions to tenantgate_mediator",
     "SELECT on view tenantgate.live_sessions (granted to tenantgate_mediator)"),
    ("grant truncate on demo.tickets to tenantgate_mediator",
     "TRUNCATE on table demo.tickets (granted to tenantgate_mediator)"),
    ("grant select on demo.customer_profiles to tenantgate_mediator",
     "SELECT on table demo.customer_profiles (granted to tenantgate_mediator)"),
    ("grant update (status) on demo.tickets to tenantgate_mediator",
     "UPDATE on table demo.tickets column status (granted to tenantgate_mediator)"),
    ("grant execute on function tenantgate.spend_credits(text, bigint, text)"
     " to tenantgate_mediator",
     "EXECUTE on function tenantgate.spend_credits(text,bigint,text)"
     " (granted to tenantgate_mediator)"),
    ("grant execute on function tenantgate.append_audit(text, text, text, jsonb)"
     " to tenantgate_mediator",
     "EXECUTE on function tenantgate.append_audit(text,text,text,jsonb)"
     " (granted to tenantgate_mediator)"),
    ("grant select on tenantgate.customer_secrets to public",
     "SELECT on table tenantgate.customer_secrets (granted to public)"),
    ("grant delete on tenantgate.session_messages to tenantgate_mediator",
     "DELETE on table tenantgate.session_messages (granted to tenantgate_mediator)"),
])
def test_mediator_privilege_beyond_its_policies_is_found(database: TestDatabase, dba: Invoke,
                                                         grant: str, expected: str) -> None:
    plant(database, grant)
    [found] = findings(dba, "mediator_excess_privileges")
    assert found["object"] == expected
    assert found["fix"].startswith("revoke ")


def test_any_mediator_privilege_on_an_enrolled_table_is_found_even_with_a_mediator_policy(
        database: TestDatabase, dba: Invoke) -> None:
    """The old arrangement (a mediator policy plus a grant) is exactly what the gate forbids."""
    plant(database, "create policy legacy on demo.tickets for select to tenantgate_mediator"
                    " using ((org_id, customer_id) = (select t.org_id, t.customer_id"
                    " from tenantgate.current_tenant() t))",
          "grant select on demo.tickets to tenantgate_mediator")
    [found] = findings(dba, "mediator_excess_privileges")
    assert found["object"] == "SELECT on table demo.tickets (granted to tenantgate_mediator)"
    assert "tenantgate.call_tool" in found["why"]
    assert found["fix"] == "revoke SELECT on demo.tickets from tenantgate_mediator;"
    plant(database, found["fix"])
    assert findings(dba, "mediator_excess_privileges") == []


def test_the_gates_entry_points_are_the_mediators_only_definer_functions(
        database: TestDatabase) -> None:
    """Nothing that takes a cost, an amount, an audit decision or an approval from its caller."""
    with database.connect() as su:
        rows = su.execute(
            "select p.proname from pg_proc p"
            " join pg_namespace n on n.oid = p.pronamespace"
            " where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')"
            " and has_function_privilege('tenantgate_mediator', p.oid, 'execute')"
            " order by 1").fetchall()
    names = {r[0] for r in rows}
    assert {"call_tool", "list_tools"} <= names
    assert names <= {"call_tool", "list_tools", "approval_answer", "upstream_outcome",
                     "session_context", "current_upstream_credential"}
    for forbidden in ("trust_check", "spend_credits", "spend_credits_for", "append_audit",
                      "audit_append_row", "audit_denial", "approval_decide", "grant_credits",
                      "rate_try", "gate_refuse", "record_denial"):
        assert forbidden not in names


def test_policy_calling_context_function_per_row_is_found(database: TestDatabase,
                                                          dba: Invoke) -> None:
    plant(database, "create policy per_row on demo.tickets for select to tenantgate_mediator"
                    " using (customer_id = tenantgate.current_customer())")
    [found] = findings(dba, "policy_per_row_function")
    assert found["object"] == "policy per_row on demo.tickets (using)"
    assert "tenantgate.current_customer()" in found["why"]
    plant(database, found["fix"].split(";", 1)[0])  # the suggested fix wraps it in a sub-select
    assert findings(dba, "policy_per_row_function") == []


def test_policy_calling_volatile_function_per_row_is_found(database: TestDatabase,
                                                           dba: Invoke) -> None:
    plant(database, "create policy sample on demo.invoices for select to tenantgate_mediator"
                    " using (random() < 0.5)")
    [found] = findings(dba, "policy_per_row_function")
    assert "volatile" in found["why"]


def test_unknown_lint_is_a_usage_error(dba: Invoke) -> None:
    result = dba("db", "check", "--lint", "no_such_lint")
    assert result.exit_code == 2
    assert "rls_disabled" in result.stderr


def test_wrong_dsn_is_one_line_naming_the_host_and_exit_1() -> None:
    result = run(["db", "check"], dsn="postgresql://nobody@127.0.0.1:1/nowhere")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1" in lines[0]
    assert "refused" in lines[0].lower()
    assert "Traceback" not in result.output


def test_mediator_grant_on_a_table_whose_rls_is_off_says_to_turn_it_on(
        database: TestDatabase, dba: Invoke) -> None:
    plant(database, "alter table tenantgate.session_messages disable row level security")
    found = findings(dba, "mediator_excess_privileges")
    assert sorted(f["object"] for f in found) == [
        "INSERT on table tenantgate.session_messages (granted to tenantgate_mediator)",
        "SELECT on table tenantgate.session_messages (granted to tenantgate_mediator)",
    ]
    assert {f["fix"] for f in found} == {
        "alter table tenantgate.session_messages enable row level security;"}
    plant(database, "alter table tenantgate.session_messages enable row level security")
    assert findings(dba) == []


def test_rls_not_forced_is_one_finding_not_a_cascade(database: TestDatabase,
                                                     dba: Invoke) -> None:
    plant(database, "alter table demo.tickets no force row level security")
    assert [f["lint"] for f in findings(dba)] == ["rls_not_forced"]


CRM = ("create schema crm",
       "create table crm.notes (org_id uuid not null, customer_id uuid not null,"
       " note_id uuid not null default gen_random_uuid(), code text not null, body text,"
       " primary key (org_id, customer_id, note_id))",
       "select tenantgate.enrol_table('crm.notes', p_privileges => '{}')")


def test_enrolled_table_keyed_by_its_tenant_columns_has_no_findings(database: TestDatabase,
                                                                   dba: Invoke) -> None:
    plant(database, *CRM, "create unique index on crm.notes (customer_id, org_id, code)")
    assert findings(dba) == []


def test_unique_key_of_enrolled_table_not_led_by_tenant_columns_is_found(
        database: TestDatabase, dba: Invoke) -> None:
    plant(database, *CRM, "alter table crm.notes add constraint notes_code_key"
                          " unique (org_id, code, customer_id)")
    found = [f for f in findings(dba, "unique_key_not_tenant_led") if "crm." in f["object"]]
    assert [f["object"] for f in found] == [
        "unique constraint notes_code_key on crm.notes (org_id, code, customer_id)"]
    assert "org_id, customer_id" in found[0]["why"]


def test_tool_function_executable_by_anyone_but_the_gate_is_found(database: TestDatabase,
                                                                   dba: Invoke) -> None:
    plant(database, "create schema if not exists tenantgate_tools",
          "create function tenantgate_tools.peek(p_org_id uuid) returns bigint language sql"
          " security definer set search_path = pg_catalog, pg_temp as 'select 1::bigint'",
          "grant execute on function tenantgate_tools.peek(uuid) to tenantgate_mediator")
    found = findings(dba, "tool_function_executable")
    assert [f["object"] for f in found] == [
        "tenantgate_tools.peek(p_org_id uuid) (executable by public)",
        "tenantgate_tools.peek(p_org_id uuid) (executable by tenantgate_mediator)"]
    plant(database, *(f["fix"] for f in found),
          "grant execute on function tenantgate_tools.peek(uuid) to tenantgate_owner")
    assert findings(dba, "tool_function_executable") == []


def test_login_role_acting_as_mediator_without_timeouts_is_found(database: TestDatabase,
                                                                 dba: Invoke) -> None:
    role = f"mediator_login_{database.name}"
    plant(database, f"create role {role} login", f"grant tenantgate_mediator to {role}")
    try:
        [found] = findings(dba, "login_role_without_timeouts")
        assert found["object"] == role
        for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
                     "log_parameter_max_length", "log_parameter_max_length_on_error"):
            assert name in found["why"]
        plant(database, *(fix.strip() for fix in found["fix"].split(";") if fix.strip()))
        assert findings(dba, "login_role_without_timeouts") == []
    finally:
        plant(database, f"drop role {role}")


def test_timeout_switched_off_for_this_database_is_found(database: TestDatabase,
                                                         dba: Invoke) -> None:
    plant(database, f"alter role tenantgate_session_manager in database {database.name}"
                    " set lock_timeout = 0",
          f"alter role tenantgate_mediator in database {database.name}"
          " set log_parameter_max_length = -1")
    try:
        found = findings(dba, "login_role_without_timeouts")
        assert [(f["object"], f["why"].split(".")[0]) for f in found] == [
            ("tenantgate_mediator", "missing or off: log_parameter_max_length = -1"),
            ("tenantgate_session_manager", "missing or off: lock_timeout = 0")]
    finally:
        plant(database, f"alter role tenantgate_session_manager in database {database.name}"
                        " reset all",
              f"alter role tenantgate_mediator in database {database.name} reset all")


@pytest.mark.parametrize(("ddl", "expected"), [
    ("create table crm.codes (org_id uuid not null, code text not null, unique (code))",
     "unique key codes_code_key does not include org_id"),
    ("create table crm.links (org_id uuid not null, other_org uuid not null, customer_id uuid"
     " not null, foreign key (other_org, customer_id) references"
     " tenantgate.customer_accounts (org_id, customer_id))",
     "foreign key links_other_org_customer_id_fkey to tenantgate.customer_accounts does not pair"),
    ("create table crm.by_customer (customer_id uuid primary key)",
     "table has no uuid org_id column"),
    ("create table crm.kinds (kind text primary key, org_id_of_owner uuid, connector_id uuid,"
     " foreign key (org_id_of_owner, connector_id) references tenantgate.connectors"
     " (org_id, connector_id))",
     "foreign key kinds_org_id_of_owner_connector_id_fkey of a table without org_id"),
])
def test_tenant_table_that_cannot_be_distributed_by_org_is_found(
        database: TestDatabase, dba: Invoke, ddl: str, expected: str) -> None:
    plant(database, "create schema crm", ddl)
    [found] = findings(dba, "citus_ready")
    assert found["object"].startswith("crm.")
    assert found["why"].startswith(expected), found["why"]


def test_shipped_schema_is_ready_to_distribute_by_org(dba: Invoke) -> None:
    assert findings(dba, "citus_ready") == []
