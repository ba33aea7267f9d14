-- 40_functions/50_audit.sql: appending to, protecting and verifying the audit chain.
--
-- row_hash = sha256(prev_hash || utf8(audit_canonical(row))). The canonical text is jsonb's
-- output of every field, with the time as epoch microseconds, so it does not depend on TimeZone or
-- DateStyle and a verifier outside Postgres can recompute it from an export.

set local role tenantgate_owner;

create function tenantgate.audit_canonical(
  p_org_id uuid, p_seq bigint, p_occurred_at timestamptz, p_session_id uuid, p_operator_id uuid,
  p_customer_id uuid, p_request_id text, p_tool_name text, p_decision text, p_detail jsonb
)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.jsonb_build_object(
    'org_id', p_org_id, 'seq', p_seq,
    'at_us', (extract(epoch from p_occurred_at) * 1000000)::bigint,
    'session_id', p_session_id, 'operator_id', p_operator_id, 'customer_id', p_customer_id,
    'request_id', p_request_id, 'tool', p_tool_name, 'decision', p_decision,
    'detail', p_detail)::text
$$;
comment on function tenantgate.audit_canonical(uuid, bigint, timestamptz, uuid, uuid, uuid, text,
                                               text, text, jsonb) is
  'The exact text an audit row''s hash covers (after the previous row''s hash).';

-- The one place that extends a chain. Not granted to anyone: reached only through the definer
-- functions append_audit, audit_denial and the mediator's gate_admit, which establish the org.
create function tenantgate.audit_append_row(
  p_org_id uuid, p_session_id uuid, p_operator_id uuid, p_customer_id uuid,
  p_request_id text, p_tool_name text, p_decision text, p_detail jsonb
)
returns table (seq bigint, row_hash bytea)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_seq   bigint;
  v_prev  bytea;
  v_at    timestamptz := pg_catalog.clock_timestamp();
  v_hash  bytea;
begin
  -- The head row is the chain's lock: concurrent appenders of one org queue here.
  insert into tenantgate.audit_heads (org_id, seq, head_hash)
  values (p_org_id, 0, pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'))
  on conflict (org_id) do nothing;
  select h.seq, h.head_hash into v_seq, v_prev
    from tenantgate.audit_heads h where h.org_id = p_org_id
     for update;

  v_seq := v_seq + 1;
  v_hash := pg_catalog.sha256(v_prev || pg_catalog.convert_to(
    tenantgate.audit_canonical(p_org_id, v_seq, v_at, p_session_id, p_operator_id, p_customer_id,
                               p_request_id, p_tool_name, p_decision,
                               coalesce(p_detail, '{}'::jsonb)), 'UTF8'));

  insert into tenantgate.audit_log
    (org_id, seq, occurred_at, session_id, operator_id, customer_id, request_id, tool_name,
     decision, detail, prev_hash, row_hash)
  values (p_org_id, v_seq, v_at, p_session_id, p_operator_id, p_customer_id, p_request_id,
          p_tool_name, p_decision, coalesce(p_detail, '{}'::jsonb), v_prev, v_hash);

  update tenantgate.audit_heads h set seq = v_seq, head_hash = v_hash where h.org_id = p_org_id;
  return query select v_seq, v_hash;
end
$$;
comment on function tenantgate.audit_append_row(uuid, uuid, uuid, uuid, text, text, text, jsonb) is
  'Internal: extend an org''s chain under its head-row lock.';

-- The mediator's append: the org, session, operator and customer come from the verified context.
create function tenantgate.append_audit(
  p_request_id text, p_tool_name text, p_decision text, p_detail jsonb
)
returns table (seq bigint, row_hash bytea)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ctx record;
begin
  select c.org_id, c.session_id, c.operator_id, c.customer_id into v_ctx
    from tenantgate.verified_context() c;
  return query
    select a.seq, a.row_hash
    from tenantgate.audit_append_row(v_ctx.org_id, v_ctx.session_id, v_ctx.operator_id,
                                     v_ctx.customer_id, p_request_id, p_tool_name, p_decision,
                                     p_detail) a;
end
$$;
comment on function tenantgate.append_audit(text, text, text, jsonb) is
  'Append an audit row for the verified session of this transaction.';

-- Calls that never got a verified context still leave a trace, in the claimed org's chain.
create function tenantgate.audit_denial(
  p_org_id uuid, p_request_id text, p_tool_name text, p_reason text, p_detail jsonb
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select 1 from tenantgate.orgs o where o.org_id = p_org_id) then
    perform tenantgate.audit_append_row(
      p_org_id, null, null, null, p_request_id, p_tool_name, 'denied',
      coalesce(p_detail, '{}'::jsonb) || pg_catalog.jsonb_build_object('reason', p_reason,
                                                                      'verified', false));
  end if;
end
$$;
comment on function tenantgate.audit_denial(uuid, text, text, text, jsonb) is
  'Record a call that failed the trust check (claimed org, unverified); nothing if no such org.';

-- Append-only: UPDATE, DELETE and TRUNCATE fail, whoever asks (the owner included).
create function tenantgate.refuse_audit_change()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception using errcode = '42501',
    message = pg_catalog.format('tenantgate: %s on %I.%I is not allowed: the audit log is append-only',
                                tg_op, tg_table_schema, tg_table_name);
end
$$;
comment on function tenantgate.refuse_audit_change() is
  'Trigger: refuse any change to the audit log but an append.';

create trigger audit_log_append_only
  before update or delete on tenantgate.audit_log
  for each row execute function tenantgate.refuse_audit_change();
create trigger audit_log_no_truncate
  before truncate on tenantgate.audit_log
  for each statement execute function tenantgate.refuse_audit_change();
create trigger audit_heads_no_delete
  before delete on tenantgate.audit_heads
  for each row execute function tenantgate.refuse_audit_change();
create trigger audit_heads_no_truncate
  before truncate on tenantgate.audit_heads
  for each statement execute function tenantgate.refuse_audit_change();

-- Walk every chain (or one org's) and report the first broken link.
create function tenantgate.audit_verify(p_org_id uuid default null)
returns table (org_id uuid, rows_checked bigint, first_broken_seq bigint, problem text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_org   uuid;
  v_row   record;
  v_prev  bytea;
  v_next  bigint;
  v_head  record;
begin
  for v_org in
    select o.org_id from (select a.org_id from tenantgate.audit_log a
                          union select h.org_id from tenantgate.audit_heads h) o
     where p_org_id is null or o.org_id = p_org_id
     order by 1
  loop
    org_id := v_org;
    rows_checked := 0;
    first_broken_seq := null;
    problem := null;
    v_prev := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
    v_next := 1;

    for v_row in
      select a.* from tenantgate.audit_log a where a.org_id = v_org order by a.seq
    loop
      rows_checked := rows_checked + 1;
      if v_row.seq <> v_next then
        first_broken_seq := v_next;
        problem := pg_catalog.format('row %s is missing (next row found is %s)', v_next, v_row.seq);
        exit;
      end if;
      if v_row.prev_hash <> v_prev then
        first_broken_seq := v_row.seq;
        problem := 'prev_hash does not match the previous row''s hash';
        exit;
      end if;
      if v_row.row_hash <> pg_catalog.sha256(v_row.prev_hash || pg_catalog.convert_to(
           tenantgate.audit_canonical(v_row.org_id, v_row.seq, v_row.occurred_at,
                                      v_row.session_id, v_row.operator_id, v_row.customer_id,
                                      v_row.request_id, v_row.tool_name, v_row.decision,
                                      v_row.detail), 'UTF8')) then
        first_broken_seq := v_row.seq;
        problem := 'row content does not match its hash (the row was edited)';
        exit;
      end if;
      v_prev := v_row.row_hash;
      v_next := v_next + 1;
    end loop;

    if first_broken_seq is null then
      select h.seq, h.head_hash into v_head from tenantgate.audit_heads h where h.org_id = v_org;
      if not found or v_head.seq <> v_next - 1 or v_head.head_hash <> v_prev then
        first_broken_seq := v_next;
        problem := 'chain head does not match the last row (rows removed at the end, or head rewritten)';
      end if;
    end if;
    return next;
  end loop;
end
$$;
comment on function tenantgate.audit_verify(uuid) is
  'Recompute every chain (or one org''s); first_broken_seq is NULL when the chain is intact.';

create function tenantgate.audit_chain_heads()
returns table (org_id uuid, seq bigint, head_hash bytea)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select h.org_id, h.seq, h.head_hash from tenantgate.audit_heads h order by h.org_id
$$;
comment on function tenantgate.audit_chain_heads() is
  'Each org''s chain head (seq, hash), to anchor outside the database.';
