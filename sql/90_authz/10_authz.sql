-- 90_authz/10_authz.sql: the OAuth 2.1 authorization server's state (package authz/).
--
-- The authorization server runs as tenantgate_session_manager: it opens a session when an operator
-- consents, and the access token it hands out IS that session's token. What it must remember
-- between requests lives here:
--   oauth_clients         clients registered dynamically (RFC 7591). Client ID Metadata Documents
--                         are fetched and cached by the process, never stored.
--   oauth_codes           authorization codes: sha256 of the code only, one use, short-lived.
--   oauth_refresh_tokens  refresh tokens: sha256 only; rotated on every use, bound to a client,
--                         never outliving their session.
-- A code or refresh token also carries the session secret, sealed (AES-GCM) under a key derived
-- from the code or token itself: the database alone never yields a secret that unlocks rows.
-- Every table has RLS enabled and forced with an owner-only policy: nobody reads them directly,
-- only through the definer functions below, which are granted to tenantgate_session_manager alone.

set local role tenantgate_owner;

create table tenantgate.oauth_clients (
  client_id      text        not null check (pg_catalog.length(client_id) between 16 and 200),
  client_name    text        not null default '' check (pg_catalog.length(client_name) <= 200),
  redirect_uris  text[]      not null check (pg_catalog.cardinality(redirect_uris) between 1 and 10),
  metadata       jsonb       not null default '{}',
  created_at     timestamptz not null default pg_catalog.now(),
  primary key (client_id)
);
comment on table tenantgate.oauth_clients is
  'OAuth clients registered through Dynamic Client Registration (public clients, PKCE only).';

create table tenantgate.oauth_codes (
  code_hash       bytea       not null check (pg_catalog.length(code_hash) = 32),
  org_id          uuid        not null,
  session_id      uuid        not null,
  client_id       text        not null,
  redirect_uri    text        not null,
  code_challenge  text        not null check (code_challenge ~ '^[A-Za-z0-9_-]{43}$'),
  resource        text        not null,
  sealed_secret   bytea       not null,
  created_at      timestamptz not null default pg_catalog.now(),
  expires_at      timestamptz not null,
  used_at         timestamptz,
  -- Keys lead with org_id like every tenant table (Citus-ready; lint citus_ready). A code is
  -- looked up by its hash alone (the client presents only the code): a sha256 of 256 random bits,
  -- so the index below needs no uniqueness across orgs.
  primary key (org_id, code_hash),
  foreign key (org_id, session_id) references tenantgate.sessions (org_id, session_id)
    on delete cascade
);
create index oauth_codes_hash_idx on tenantgate.oauth_codes (code_hash);
comment on table tenantgate.oauth_codes is
  'Authorization codes (sha256 only). A second redemption ends the session the first one opened.';

create table tenantgate.oauth_refresh_tokens (
  token_hash     bytea       not null check (pg_catalog.length(token_hash) = 32),
  org_id         uuid        not null,
  session_id     uuid        not null,
  client_id      text        not null,
  sealed_secret  bytea       not null,
  created_at     timestamptz not null default pg_catalog.now(),
  used_at        timestamptz,
  primary key (org_id, token_hash),  -- see oauth_codes
  foreign key (org_id, session_id) references tenantgate.sessions (org_id, session_id)
    on delete cascade
);
create index oauth_refresh_tokens_session_idx
  on tenantgate.oauth_refresh_tokens (org_id, session_id);
create index oauth_refresh_tokens_hash_idx on tenantgate.oauth_refresh_tokens (token_hash);
comment on table tenantgate.oauth_refresh_tokens is
  'Refresh tokens (sha256 only), rotated on use; reusing a rotated one ends the session.';

alter table tenantgate.oauth_clients enable row level security;
alter table tenantgate.oauth_clients force row level security;
alter table tenantgate.oauth_codes enable row level security;
alter table tenantgate.oauth_codes force row level security;
alter table tenantgate.oauth_refresh_tokens enable row level security;
alter table tenantgate.oauth_refresh_tokens force row level security;
create policy owner_all on tenantgate.oauth_clients for all to tenantgate_owner
  using (true) with check (true);
create policy owner_all on tenantgate.oauth_codes for all to tenantgate_owner
  using (true) with check (true);
create policy owner_all on tenantgate.oauth_refresh_tokens for all to tenantgate_owner
  using (true) with check (true);

-- A session the authorization server may still hand tokens for: not ended, not expired, and its
-- org, operator, connector and customer all still active.
create function tenantgate.authz_session_live(p_org_id uuid, p_session_id uuid)
returns table (operator_id uuid, connector_id uuid, customer_id uuid, scopes text[],
               expires_at timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.operator_id, s.connector_id, s.customer_id, s.scopes, s.expires_at
    from tenantgate.sessions s
    join tenantgate.orgs o on o.org_id = s.org_id and o.status = 'active'
    join tenantgate.operators op
      on op.org_id = s.org_id and op.operator_id = s.operator_id and op.status = 'active'
    join tenantgate.connectors c
      on c.org_id = s.org_id and c.connector_id = s.connector_id and c.status = 'active'
    join tenantgate.customer_accounts ca
      on ca.org_id = s.org_id and ca.customer_id = s.customer_id and ca.status = 'active'
   where s.org_id = p_org_id and s.session_id = p_session_id
     and s.ended_at is null and s.expires_at > pg_catalog.now()
$$;
comment on function tenantgate.authz_session_live(uuid, uuid) is
  'The session if it is live and everything it binds is still active; no row otherwise.';

-- Identity: the IdP's verified email names exactly one active operator of one active org.
create function tenantgate.authz_operator_by_email(p_email text)
returns table (org_id uuid, operator_id uuid, org_name text, display_name text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
  select op.org_id, op.operator_id, o.name, op.display_name
    from tenantgate.operators op
    join tenantgate.orgs o on o.org_id = op.org_id and o.status = 'active'
   where pg_catalog.lower(op.email) = pg_catalog.lower(p_email) and op.status = 'active';
end
$$;
comment on function tenantgate.authz_operator_by_email(text) is
  'Active operators (of active orgs) with this email; the caller refuses zero or several.';

-- What an operator may consent to: active customers of active connectors of their own org, and
-- the scopes that connector's enabled tools need.
create function tenantgate.authz_consent_choices(p_org_id uuid, p_operator_id uuid)
returns table (connector_id uuid, connector_name text, customer_id uuid, customer_name text,
               scopes text[])
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select c.connector_id, c.name, ca.customer_id, ca.name,
         coalesce((select pg_catalog.array_agg(distinct t.required_scope order by t.required_scope)
                     from tenantgate.tools t
                    where t.org_id = c.org_id and t.connector_id = c.connector_id and t.enabled),
                  '{}')
    from tenantgate.orgs o
    join tenantgate.operators op
      on op.org_id = o.org_id and op.operator_id = p_operator_id and op.status = 'active'
    join tenantgate.connectors c on c.org_id = o.org_id and c.status = 'active'
    join tenantgate.customer_accounts ca
      on ca.org_id = c.org_id and ca.connector_id = c.connector_id and ca.status = 'active'
   where o.org_id = p_org_id and o.status = 'active'
   order by c.name, ca.name
$$;
comment on function tenantgate.authz_consent_choices(uuid, uuid) is
  'Customers an active operator may bind a session to, with the scopes their connector offers.';

create function tenantgate.authz_client_register(p_client_id text, p_client_name text,
                                                 p_redirect_uris text[], p_metadata jsonb)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into tenantgate.oauth_clients (client_id, client_name, redirect_uris, metadata)
  values (p_client_id, coalesce(p_client_name, ''), p_redirect_uris, coalesce(p_metadata, '{}'))
$$;
comment on function tenantgate.authz_client_register(text, text, text[], jsonb) is
  'Store a dynamically registered public client.';

create function tenantgate.authz_client_get(p_client_id text)
returns table (client_name text, redirect_uris text[], metadata jsonb)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select c.client_name, c.redirect_uris, c.metadata
    from tenantgate.oauth_clients c where c.client_id = p_client_id
$$;
comment on function tenantgate.authz_client_get(text) is 'A registered client, or no row.';

create function tenantgate.authz_code_create(
  p_code_hash bytea, p_org_id uuid, p_session_id uuid, p_client_id text, p_redirect_uri text,
  p_code_challenge text, p_resource text, p_sealed_secret bytea, p_ttl interval)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into tenantgate.oauth_codes (code_hash, org_id, session_id, client_id, redirect_uri,
                                      code_challenge, resource, sealed_secret, expires_at)
  values (p_code_hash, p_org_id, p_session_id, p_client_id, p_redirect_uri, p_code_challenge,
          p_resource, p_sealed_secret,
          pg_catalog.now() + least(greatest(p_ttl, interval '1 second'), interval '10 minutes'))
$$;
comment on function tenantgate.authz_code_create(bytea, uuid, uuid, text, text, text, text, bytea,
                                                 interval) is
  'Store an authorization code (its sha256) for a session just opened on consent.';

-- Redeem a code once. A second redemption is an attack on a stolen code: the session the first
-- redemption got tokens for is ended, so those tokens die on their next call.
-- status: ok | replayed | unknown (unknown, expired, or its session no longer live)
create function tenantgate.authz_code_redeem(p_code_hash bytea)
returns table (status text, org_id uuid, session_id uuid, client_id text, redirect_uri text,
               code_challenge text, resource text, sealed_secret bytea)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_code tenantgate.oauth_codes;
begin
  select * into v_code from tenantgate.oauth_codes c where c.code_hash = p_code_hash for update;
  if not found then
    return query select 'unknown'::text, null::uuid, null::uuid, null::text, null::text,
                        null::text, null::text, null::bytea;
    return;
  end if;
  if v_code.used_at is not null then
    perform tenantgate.end_session(v_code.org_id, v_code.session_id);
    update tenantgate.oauth_refresh_tokens r set used_at = coalesce(r.used_at, pg_catalog.now())
     where r.org_id = v_code.org_id and r.session_id = v_code.session_id;
    return query select 'replayed'::text, v_code.org_id, v_code.session_id, null::text,
                        null::text, null::text, null::text, null::bytea;
    return;
  end if;
  update tenantgate.oauth_codes c set used_at = pg_catalog.now() where c.code_hash = p_code_hash;
  if v_code.expires_at <= pg_catalog.now()
     or not exists (select 1 from tenantgate.authz_session_live(v_code.org_id, v_code.session_id))
  then
    return query select 'unknown'::text, null::uuid, null::uuid, null::text, null::text,
                        null::text, null::text, null::bytea;
    return;
  end if;
  return query select 'ok'::text, v_code.org_id, v_code.session_id, v_code.client_id,
                      v_code.redirect_uri, v_code.code_challenge, v_code.resource,
                      v_code.sealed_secret;
end
$$;
comment on function tenantgate.authz_code_redeem(bytea) is
  'Redeem an authorization code once (ok); a replay ends its session (replayed); else unknown.';

create function tenantgate.authz_refresh_store(p_token_hash bytea, p_org_id uuid,
                                               p_session_id uuid, p_client_id text,
                                               p_sealed_secret bytea)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into tenantgate.oauth_refresh_tokens (token_hash, org_id, session_id, client_id,
                                               sealed_secret)
  values (p_token_hash, p_org_id, p_session_id, p_client_id, p_sealed_secret)
$$;
comment on function tenantgate.authz_refresh_store(bytea, uuid, uuid, text, bytea) is
  'Store a refresh token (its sha256) for a session and a client.';

-- Use a refresh token once, for the client it was issued to, while its session is live. Reusing a
-- rotated token means two parties hold it: the session ends.
-- status: ok | reused | unknown
create function tenantgate.authz_refresh_use(p_token_hash bytea, p_client_id text)
returns table (status text, org_id uuid, session_id uuid, sealed_secret bytea)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tok tenantgate.oauth_refresh_tokens;
begin
  select * into v_tok from tenantgate.oauth_refresh_tokens r
   where r.token_hash = p_token_hash for update;
  if not found or v_tok.client_id <> p_client_id then
    return query select 'unknown'::text, null::uuid, null::uuid, null::bytea;
    return;
  end if;
  if v_tok.used_at is not null then
    perform tenantgate.end_session(v_tok.org_id, v_tok.session_id);
    return query select 'reused'::text, v_tok.org_id, v_tok.session_id, null::bytea;
    return;
  end if;
  update tenantgate.oauth_refresh_tokens r set used_at = pg_catalog.now()
   where r.token_hash = p_token_hash;
  if not exists (select 1 from tenantgate.authz_session_live(v_tok.org_id, v_tok.session_id)) then
    return query select 'unknown'::text, null::uuid, null::uuid, null::bytea;
    return;
  end if;
  return query select 'ok'::text, v_tok.org_id, v_tok.session_id, v_tok.sealed_secret;
end
$$;
comment on function tenantgate.authz_refresh_use(bytea, text) is
  'Consume a refresh token of this client (ok); reuse of a consumed one ends its session.';

-- RFC 7009: revoking a refresh token ends its session (and so every access token of it).
create function tenantgate.authz_refresh_revoke(p_token_hash bytea, p_client_id text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tok tenantgate.oauth_refresh_tokens;
begin
  select * into v_tok from tenantgate.oauth_refresh_tokens r
   where r.token_hash = p_token_hash and r.client_id = p_client_id;
  if not found then
    return false;
  end if;
  update tenantgate.oauth_refresh_tokens r set used_at = coalesce(r.used_at, pg_catalog.now())
   where r.org_id = v_tok.org_id and r.session_id = v_tok.session_id;
  perform tenantgate.end_session(v_tok.org_id, v_tok.session_id);
  return true;
end
$$;
comment on function tenantgate.authz_refresh_revoke(bytea, text) is
  'Revoke a refresh token of this client: its session ends, with every token issued for it.';

-- The approvals page: pending approvals of the operator's org. `preview` is read through
-- to_jsonb so that this works before and after the approvals table gains its preview column.
create function tenantgate.authz_pending_approvals(p_org_id uuid, p_operator_id uuid)
returns table (approval_id uuid, tool_name text, arguments jsonb, preview jsonb,
               customer_name text, requested_by text, own_request boolean,
               created_at timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select a.approval_id, a.tool_name, a.arguments, pg_catalog.to_jsonb(a) -> 'preview',
         ca.name, op.email, a.operator_id = p_operator_id, a.created_at
    from tenantgate.approvals a
    join tenantgate.orgs o on o.org_id = a.org_id and o.status = 'active'
    join tenantgate.operators me
      on me.org_id = a.org_id and me.operator_id = p_operator_id and me.status = 'active'
    join tenantgate.customer_accounts ca
      on ca.org_id = a.org_id and ca.customer_id = a.customer_id
    join tenantgate.operators op on op.org_id = a.org_id and op.operator_id = a.operator_id
   where a.org_id = p_org_id and a.status = 'pending'
   order by a.created_at desc
   limit 200
$$;
comment on function tenantgate.authz_pending_approvals(uuid, uuid) is
  'Pending approvals of an org, for one of its active operators (the approvals page).';

revoke execute on function
  tenantgate.authz_session_live(uuid, uuid),
  tenantgate.authz_operator_by_email(text),
  tenantgate.authz_consent_choices(uuid, uuid),
  tenantgate.authz_client_register(text, text, text[], jsonb),
  tenantgate.authz_client_get(text),
  tenantgate.authz_code_create(bytea, uuid, uuid, text, text, text, text, bytea, interval),
  tenantgate.authz_code_redeem(bytea),
  tenantgate.authz_refresh_store(bytea, uuid, uuid, text, bytea),
  tenantgate.authz_refresh_use(bytea, text),
  tenantgate.authz_refresh_revoke(bytea, text),
  tenantgate.authz_pending_approvals(uuid, uuid)
  from public;

grant execute on function
  tenantgate.authz_session_live(uuid, uuid),
  tenantgate.authz_operator_by_email(text),
  tenantgate.authz_consent_choices(uuid, uuid),
  tenantgate.authz_client_register(text, text, text[], jsonb),
  tenantgate.authz_client_get(text),
  tenantgate.authz_code_create(bytea, uuid, uuid, text, text, text, text, bytea, interval),
  tenantgate.authz_code_redeem(bytea),
  tenantgate.authz_refresh_store(bytea, uuid, uuid, text, bytea),
  tenantgate.authz_refresh_use(bytea, text),
  tenantgate.authz_refresh_revoke(bytea, text),
  tenantgate.authz_pending_approvals(uuid, uuid),
  tenantgate.approval_decide(uuid, uuid, uuid, boolean)
  to tenantgate_session_manager;
