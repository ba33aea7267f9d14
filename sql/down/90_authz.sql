-- down/90_authz.sql: remove what sql/90_authz added.

set local role tenantgate_owner;

revoke execute on function tenantgate.approval_decide(uuid, uuid, uuid, boolean)
  from tenantgate_session_manager;
drop function if exists tenantgate.authz_pending_approvals(uuid, uuid);
drop function if exists tenantgate.authz_refresh_revoke(bytea, text);
drop function if exists tenantgate.authz_refresh_use(bytea, text);
drop function if exists tenantgate.authz_refresh_store(bytea, uuid, uuid, text, bytea);
drop function if exists tenantgate.authz_code_redeem(bytea);
drop function if exists tenantgate.authz_code_create(bytea, uuid, uuid, text, text, text, text,
                                                     bytea, interval);
drop function if exists tenantgate.authz_client_get(text);
drop function if exists tenantgate.authz_client_register(text, text, text[], jsonb);
drop function if exists tenantgate.authz_consent_choices(uuid, uuid);
drop function if exists tenantgate.authz_operator_by_email(text);
drop function if exists tenantgate.authz_session_live(uuid, uuid);
drop table if exists tenantgate.oauth_refresh_tokens;
drop table if exists tenantgate.oauth_codes;
drop table if exists tenantgate.oauth_clients;
