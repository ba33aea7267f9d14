-- 40_functions/10_context.sql: the verified caller context that every policy reads.
--
-- The mediator sets three settings transaction-locally (set_config(name, value, true)):
--   app.org_id, app.customer_id   the tenant named by the verified token;
--   app.session_secret            the random secret of the live session, also from the token.
-- Settings alone are forgeable by anyone holding a connection, so nothing trusts them directly:
-- session_context() hashes the secret, finds the live session and re-checks, on every query, that
-- it is unexpired and not ended and that its org, operator, connector and customer are active.

set local role tenantgate_owner;

-- Sessions that may act right now: unexpired, not ended, and every party active.
-- Used by the definer functions only (nobody else has a grant on it).
create view tenantgate.live_sessions as
select s.org_id, s.session_id, s.operator_id, s.connector_id, s.customer_id, s.scopes,
       s.secret_hash, s.expires_at
from tenantgate.sessions s
join tenantgate.orgs o
  on o.org_id = s.org_id and o.status = 'active'
join tenantgate.operators op
  on op.org_id = s.org_id and op.operator_id = s.operator_id and op.status = 'active'
join tenantgate.connectors c
  on c.org_id = s.org_id and c.connector_id = s.connector_id and c.status = 'active'
join tenantgate.customer_accounts ca
  on ca.org_id = s.org_id and ca.customer_id = s.customer_id
 and ca.connector_id = s.connector_id and ca.status = 'active'
where s.ended_at is null
  and s.expires_at > pg_catalog.statement_timestamp();
comment on view tenantgate.live_sessions is
  'Sessions that may act now: unexpired, not ended, org/operator/connector/customer all active.';

-- A uuid setting, or NULL when it is unset, empty ('' after a local setting ends) or malformed.
-- Malformed input must read as "no context", never as an error that tells a prober something.
create function tenantgate.setting_uuid(p_name text)
returns uuid
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select case
           when v ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then v::uuid
         end
  from (select pg_catalog.current_setting(p_name, true) as v) s
$$;
comment on function tenantgate.setting_uuid(text) is
  'A uuid-valued setting, NULL when unset, empty or malformed.';

-- The one row of verified ids for this transaction's settings, or no row at all.
create function tenantgate.session_context()
returns table (org_id uuid, customer_id uuid, session_id uuid, operator_id uuid,
               connector_id uuid, scopes text[])
language plpgsql  -- the org is read into a variable first: on Citus the lookup then hits one shard
stable
rows 1
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_org      uuid := tenantgate.setting_uuid('app.org_id');
  v_customer uuid := tenantgate.setting_uuid('app.customer_id');
  v_hash     bytea := pg_catalog.sha256(pg_catalog.convert_to(
                        nullif(pg_catalog.current_setting('app.session_secret', true), ''), 'UTF8'));
begin
  if v_org is null or v_customer is null or v_hash is null then
    return;
  end if;
  return query
  select ls.org_id, ls.customer_id, ls.session_id, ls.operator_id, ls.connector_id, ls.scopes
  from tenantgate.live_sessions ls
  where ls.org_id = v_org
    and ls.customer_id = v_customer
    and ls.secret_hash = v_hash;
end
$$;
comment on function tenantgate.session_context() is
  'Verified (org, customer, session, operator, connector, scopes) of this transaction''s settings, '
  're-checked on every call; no row when anything is missing, wrong, ended, expired or inactive.';

-- The same row for definer functions that must not run without a verified session: raises 42501
-- instead of returning nothing. Not granted to anyone; the definer functions call it as the owner.
create function tenantgate.verified_context()
returns table (org_id uuid, customer_id uuid, session_id uuid, operator_id uuid,
               connector_id uuid, scopes text[])
language plpgsql
stable
rows 1
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select c.org_id, c.customer_id, c.session_id, c.operator_id, c.connector_id, c.scopes
    from tenantgate.session_context() c;
  if not found then
    raise exception using errcode = '42501',
      message = 'tenantgate: no verified session in this transaction';
  end if;
end
$$;
comment on function tenantgate.verified_context() is
  'session_context(), or SQLSTATE 42501 when this transaction carries no verified session.';

-- Policies compare (org, customer) against this in one sub-select, which the planner runs once
-- per query (an InitPlan) and which leaves the (org_id, customer_id) index usable:
--   using ((org_id, customer_id) = (select t.org_id, t.customer_id from tenantgate.current_tenant() t))
create function tenantgate.current_tenant()
returns table (org_id uuid, customer_id uuid)
language sql
stable
rows 1
set search_path = pg_catalog, pg_temp
as $$
  select c.org_id, c.customer_id from tenantgate.session_context() c
$$;
comment on function tenantgate.current_tenant() is
  'Verified (org_id, customer_id) for policies; no row when unverified.';

-- Scalar helpers for people writing their own policies. Wrap them in a sub-select:
--   using (org_id = (select tenantgate.current_org()))
create function tenantgate.current_org() returns uuid
language sql stable set search_path = pg_catalog, pg_temp
as $$ select c.org_id from tenantgate.session_context() c $$;
comment on function tenantgate.current_org() is 'Verified org id, or NULL.';

create function tenantgate.current_customer() returns uuid
language sql stable set search_path = pg_catalog, pg_temp
as $$ select c.customer_id from tenantgate.session_context() c $$;
comment on function tenantgate.current_customer() is 'Verified customer account id, or NULL.';

create function tenantgate.current_session() returns uuid
language sql stable set search_path = pg_catalog, pg_temp
as $$ select c.session_id from tenantgate.session_context() c $$;
comment on function tenantgate.current_session() is 'Verified session id, or NULL.';

create function tenantgate.current_operator() returns uuid
language sql stable set search_path = pg_catalog, pg_temp
as $$ select c.operator_id from tenantgate.session_context() c $$;
comment on function tenantgate.current_operator() is 'Verified operator id, or NULL.';

create function tenantgate.current_connector() returns uuid
language sql stable set search_path = pg_catalog, pg_temp
as $$ select c.connector_id from tenantgate.session_context() c $$;
comment on function tenantgate.current_connector() is 'Verified connector id, or NULL.';
