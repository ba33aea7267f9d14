-- 85_secrets.sql: the one way the mediator reads an upstream credential.
--
-- The mediator has no privilege on tenantgate.customer_secrets or tenantgate.connectors. For an
-- HTTP-backed tool it needs exactly one row: the verified customer's sealed API key and its
-- connector's base URL and key header. This function returns that row for the transaction's
-- verified session (tenantgate.session_context(), which re-checks secret, expiry and that org,
-- operator, connector and customer are active), and nothing otherwise: no argument names a
-- tenant, so no argument can name another tenant's key.
--
-- Only ciphertext leaves the database: decryption happens in the mediator's memory
-- (tenantgate/mediator/secrets.py), so no key is ever sent to SQL.

set local role tenantgate_owner;

create or replace function tenantgate.current_upstream_credential()
returns table (org_id uuid, customer_id uuid, connector_id uuid, base_url text,
               auth_header text, ciphertext bytea, key_id text)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select ctx.org_id, ctx.customer_id, ctx.connector_id, c.base_url, c.auth_header,
         s.ciphertext, s.key_id
  from tenantgate.session_context() ctx
  join tenantgate.connectors c
    on c.org_id = ctx.org_id and c.connector_id = ctx.connector_id
  join tenantgate.customer_secrets s
    on s.org_id = ctx.org_id and s.customer_id = ctx.customer_id
$$;
comment on function tenantgate.current_upstream_credential() is
  'The verified customer''s sealed upstream API key with its connector''s base URL and key '
  'header; no row without a verified session or without a stored secret.';

revoke execute on function tenantgate.current_upstream_credential() from public;
grant execute on function tenantgate.current_upstream_credential() to tenantgate_mediator;
