-- 40_functions/30_sessions.sql: opening, ending and purging sessions (the session manager's job).
--
-- The product backend generates a random secret, keeps it only in the token it mints, and sends
-- the database nothing but sha256(secret).

set local role tenantgate_owner;

create function tenantgate.open_session(
  p_org_id       uuid,
  p_operator_id  uuid,
  p_connector_id uuid,
  p_customer_id  uuid,
  p_scopes       text[],
  p_ttl          interval,
  p_secret_hash  bytea
)
returns table (session_id uuid, expires_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_scope text;
begin
  if p_ttl is null or p_ttl <= interval '0' or p_ttl > interval '24 hours' then
    raise exception using errcode = '22023',
      message = pg_catalog.format('tenantgate: session ttl must be between 0 and 24 hours, got %s', p_ttl),
      hint = 'Open short sessions and open a new one when it expires.';
  end if;
  if p_secret_hash is null or pg_catalog.length(p_secret_hash) <> 32 then
    raise exception using errcode = '22023',
      message = 'tenantgate: the secret hash must be the 32-byte sha256 of the session secret';
  end if;
  foreach v_scope in array coalesce(p_scopes, '{}') loop
    if v_scope !~ '^[a-z][a-z0-9_.:-]{0,63}$' then
      raise exception using errcode = '22023',
        message = pg_catalog.format('tenantgate: invalid scope %L', v_scope),
        hint = 'Scopes are lowercase words such as read:tickets.';
    end if;
  end loop;

  -- Check, then insert: each statement filters on org_id itself, so on Citus all run on the
  -- org's node (a join or INSERT ... SELECT through the reference table orgs is not routed there).
  if not exists (select 1 from tenantgate.orgs o where o.org_id = p_org_id and o.status = 'active')
     or not exists (
    select 1
    from tenantgate.operators op
    join tenantgate.connectors c on c.org_id = op.org_id
    join tenantgate.customer_accounts ca on ca.org_id = op.org_id
    where op.org_id = p_org_id and op.operator_id = p_operator_id and op.status = 'active'
      and c.org_id = p_org_id and c.connector_id = p_connector_id and c.status = 'active'
      and ca.org_id = p_org_id and ca.customer_id = p_customer_id
      and ca.connector_id = p_connector_id and ca.status = 'active'
  ) then
    raise exception using errcode = 'P0002',
      message = 'tenantgate: cannot open session: not found or inactive',
      hint = 'Check that the org, operator, connector and customer exist, belong together and are active.';
  end if;

  return query
  insert into tenantgate.sessions as s
    (org_id, operator_id, connector_id, customer_id, scopes, secret_hash, expires_at)
  values (p_org_id, p_operator_id, p_connector_id, p_customer_id, coalesce(p_scopes, '{}'),
          p_secret_hash, pg_catalog.now() + p_ttl)
  returning s.session_id, s.expires_at;
end
$$;
comment on function tenantgate.open_session(uuid, uuid, uuid, uuid, text[], interval, bytea) is
  'Open a session for an active (org, operator, connector, customer); stores sha256(secret) only.';

create function tenantgate.end_session(p_org_id uuid, p_session_id uuid)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  update tenantgate.sessions s
     set ended_at = pg_catalog.now()
   where s.org_id = p_org_id and s.session_id = p_session_id and s.ended_at is null;
  if not found then
    return false;
  end if;
  -- The chat history goes with the session.
  delete from tenantgate.session_messages m
   where m.org_id = p_org_id and m.session_id = p_session_id;
  return true;
end
$$;
comment on function tenantgate.end_session(uuid, uuid) is
  'End a session now and delete its chat history; false if it was unknown or already ended.';

create function tenantgate.purge_sessions()
returns table (sessions bigint, messages bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_messages bigint;
  v_sessions bigint;
begin
  -- Messages past their own TTL, and every message of a session that is over.
  with gone as (
    delete from tenantgate.session_messages m
     where m.expires_at <= pg_catalog.now()
        or exists (select 1 from tenantgate.sessions s
                    where s.org_id = m.org_id and s.session_id = m.session_id
                      and (s.ended_at is not null or s.expires_at <= pg_catalog.now()))
    returning 1
  )
  select pg_catalog.count(*) into v_messages from gone;

  with gone as (
    delete from tenantgate.sessions s
     where s.ended_at is not null or s.expires_at <= pg_catalog.now()
    returning 1
  )
  select pg_catalog.count(*) into v_sessions from gone;

  return query select v_sessions, v_messages;
end
$$;
comment on function tenantgate.purge_sessions() is
  'Delete ended or expired sessions and every expired message; returns how many of each.';
