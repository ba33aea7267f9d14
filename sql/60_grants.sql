-- 60_grants.sql: who may call and touch what. Nothing is granted to PUBLIC.
--
-- Functions are executable by PUBLIC when created: revoke that first, then grant each function to
-- exactly the role that needs it.

set local role tenantgate_owner;

revoke execute on all functions in schema tenantgate from public;

grant usage on schema tenantgate
  to tenantgate_mediator, tenantgate_session_manager, tenantgate_admin;

-- The mediator: the per-turn functions and the context its policies evaluate.
grant execute on function
  tenantgate.trust_check(uuid, uuid, uuid, text),
  tenantgate.spend_credits(text, bigint, text),
  tenantgate.append_audit(text, text, text, jsonb),
  tenantgate.audit_denial(uuid, text, text, text, jsonb),
  tenantgate.session_context(),
  tenantgate.setting_uuid(text),
  tenantgate.current_tenant(),
  tenantgate.current_org(),
  tenantgate.current_customer(),
  tenantgate.current_session(),
  tenantgate.current_operator(),
  tenantgate.current_connector()
  to tenantgate_mediator;
grant select, insert on tenantgate.session_messages to tenantgate_mediator;

-- The session manager: sessions only.
grant execute on function
  tenantgate.open_session(uuid, uuid, uuid, uuid, text[], interval, bytea),
  tenantgate.end_session(uuid, uuid),
  tenantgate.purge_sessions()
  to tenantgate_session_manager;

-- The admin (and, through membership, the session manager's functions).
grant select, insert, update on
  tenantgate.orgs, tenantgate.operators, tenantgate.connectors, tenantgate.customer_accounts,
  tenantgate.tools, tenantgate.customer_secrets
  to tenantgate_admin;
grant delete on tenantgate.tools, tenantgate.customer_secrets to tenantgate_admin;
grant select (org_id, session_id, operator_id, connector_id, customer_id, scopes, created_at,
              expires_at, ended_at)
  on tenantgate.sessions to tenantgate_admin;
grant select on tenantgate.credit_accounts, tenantgate.credit_ledger, tenantgate.audit_log,
  tenantgate.audit_heads to tenantgate_admin;
grant execute on function
  tenantgate.grant_credits(uuid, bigint, text),
  tenantgate.audit_verify(uuid),
  tenantgate.audit_chain_heads(),
  tenantgate.audit_canonical(uuid, bigint, timestamptz, uuid, uuid, uuid, text, text, text, jsonb)
  to tenantgate_admin;
