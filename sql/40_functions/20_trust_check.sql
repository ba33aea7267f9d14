-- 40_functions/20_trust_check.sql: the per-turn trust check that is also the tool-catalog load.
--
-- One query proves that the session secret belongs to a live session of exactly this org,
-- connector and customer, that org, operator, connector and customer are all active, and returns
-- the connector's enabled tools. Every failure -- wrong org, wrong connector, unknown customer,
-- paused, revoked, expired, ended, bad secret -- gives the same answer: no rows. There is no way to
-- tell "exists but forbidden" from "does not exist", and no way to get the catalog without passing.

set local role tenantgate_owner;

create function tenantgate.trust_check(
  p_org_id         uuid,
  p_connector_id   uuid,
  p_customer_id    uuid,
  p_session_secret text
)
returns table (session_id uuid, operator_id uuid, scopes text[], expires_at timestamptz,
               tool_name text, required_scope text, side_effect boolean, credit_cost integer,
               description text)
language plpgsql  -- not sql: Citus cannot plan a SQL function's parameters on a distributed table
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
  select ls.session_id, ls.operator_id, ls.scopes, ls.expires_at,
         t.tool_name, t.required_scope, t.side_effect, t.credit_cost, t.description
  from tenantgate.live_sessions ls
  join tenantgate.tools t
    on t.org_id = ls.org_id and t.connector_id = ls.connector_id and t.enabled
  where ls.org_id = p_org_id
    and ls.connector_id = p_connector_id
    and ls.customer_id = p_customer_id
    and ls.secret_hash = pg_catalog.sha256(pg_catalog.convert_to(p_session_secret, 'UTF8'))
  order by t.tool_name;
end
$$;
comment on function tenantgate.trust_check(uuid, uuid, uuid, text) is
  'Per-turn trust check + tool catalog in one query: the enabled tools of a live, fully active '
  'session, or no rows for any failure whatsoever.';
