-- 88_gate/40_call.sql: the gate. One statement per tools/call and per tools/list.
--
--   select tenantgate.call_tool(org, customer, secret, request_key, tool, arguments)
--
-- does, in the statement's own transaction and in this order:
--   1. sets the transaction-local context and verifies the session ONCE (live_sessions);
--      an unverified caller is recorded in tenantgate.denials and answered "not_found";
--   2. finds the tool in the session's catalog (enabled, scope held); scope, cost, approval
--      policy and rate limit come from the catalog row, never from the caller;
--   3. checks the arguments against the tool's declared parameters;
--   4. takes the rate limit;
--   5. binds the request key to (session, tool, arguments hash); a side effect already done
--      answers its saved outcome and runs nothing;
--   6. handles approval (operator: stored, four eyes; host: answered through the MCP host);
--   7. charges the catalog cost, runs tenantgate_tools.<tool>, shapes the rows by data class
--      and the session's scopes, in one subtransaction: a failure undoes the charge;
--   8. writes the audit row AFTER the read, with row and byte counts, and answers.
-- Every refusal is an answer ({"status": ...}), not an error, so its audit row commits with it.
-- Every statement touches one org: org_id leads every key, filter and join (ready for Citus).

set local role tenantgate_owner;

-- The chain append of sql/40_functions/50_audit.sql, restated as one statement per append: the
-- head row is created only by an org's first append (it used to be upserted, then read, on every
-- append). Same lock, same hash.
create or replace function tenantgate.audit_append_row(
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
  v_at    timestamptz := pg_catalog.clock_timestamp();
  v_hash  bytea;
begin
  -- The head row is the chain's lock: concurrent appenders of one org queue here. It is looked
  -- up once, by the append itself; only an org's very first append finds none and creates it.
  loop
    -- Lock the head, hash the new row after it, move the head and append: one statement.
    with head as (
      select h.seq + 1 as seq, h.head_hash as prev
        from tenantgate.audit_heads h where h.org_id = p_org_id
         for update
    ), next as (
      select head.seq, head.prev, pg_catalog.sha256(head.prev || pg_catalog.convert_to(
               tenantgate.audit_canonical(p_org_id, head.seq, v_at, p_session_id, p_operator_id,
                                          p_customer_id, p_request_id, p_tool_name, p_decision,
                                          coalesce(p_detail, '{}'::jsonb)), 'UTF8')) as hash
        from head
    ), moved as (
      update tenantgate.audit_heads h set seq = next.seq, head_hash = next.hash
        from next where h.org_id = p_org_id
      returning next.seq, next.prev, next.hash
    )
    insert into tenantgate.audit_log
      (org_id, seq, occurred_at, session_id, operator_id, customer_id, request_id, tool_name,
       decision, detail, prev_hash, row_hash)
    select p_org_id, moved.seq, v_at, p_session_id, p_operator_id, p_customer_id, p_request_id,
           p_tool_name, p_decision, coalesce(p_detail, '{}'::jsonb), moved.prev, moved.hash
      from moved
    returning tenantgate.audit_log.seq, tenantgate.audit_log.row_hash into v_seq, v_hash;
    exit when v_seq is not null;
    insert into tenantgate.audit_heads (org_id, seq, head_hash)
    values (p_org_id, 0, pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'))
    on conflict (org_id) do nothing;
  end loop;
  return query select v_seq, v_hash;
end
$$;

-- The one check every entry point makes: the live session this (org, customer, secret) opens,
-- or no row. Unexpired, not ended, org, operator, connector and customer all active
-- (live_sessions), and sha256(secret) matches. Internal: granted to nobody.
create function tenantgate.gate_session(p_org_id uuid, p_customer_id uuid, p_session_secret text)
returns table (org_id uuid, session_id uuid, operator_id uuid, connector_id uuid,
               customer_id uuid, scopes text[])
language plpgsql  -- not sql: Citus cannot plan a SQL function's parameters on a distributed table
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select ls.org_id, ls.session_id, ls.operator_id, ls.connector_id, ls.customer_id, ls.scopes
      from tenantgate.live_sessions ls
     where ls.org_id = p_org_id
       and ls.secret_hash = pg_catalog.sha256(pg_catalog.convert_to(p_session_secret, 'UTF8'))
       and ls.customer_id = p_customer_id;
end
$$;
comment on function tenantgate.gate_session(uuid, uuid, text) is
  'Internal: the live session of (org, customer, secret), or no row; every gate entry point.';

-- One token from (org, operator, tool)'s bucket. Returns the number of refusals counted since the
-- last token taken (>= 0), or -1 when the bucket is empty (that refusal is counted instead).
create function tenantgate.rate_try(p_org_id uuid, p_operator_id uuid, p_tool_name text,
                                    p_burst integer, p_per_second double precision)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now     timestamptz := pg_catalog.clock_timestamp();
  v_pending bigint;
begin
  -- SET expressions read the row as it was, so pending gets the refusals not reported yet.
  insert into tenantgate.rate_buckets as b (org_id, operator_id, tool_name, tokens, updated_at)
  values (p_org_id, p_operator_id, p_tool_name, p_burst - 1, v_now)
  on conflict (org_id, operator_id, tool_name) do update
    set tokens = least(p_burst::double precision,
                       b.tokens + extract(epoch from v_now - b.updated_at)::double precision
                                  * p_per_second) - 1,
        updated_at = v_now, pending = b.refused - b.reported, reported = b.refused
    where least(p_burst::double precision,
                b.tokens + extract(epoch from v_now - b.updated_at)::double precision
                           * p_per_second) >= 1
  returning b.pending into v_pending;
  if found then
    return v_pending;
  end if;
  update tenantgate.rate_buckets b set refused = b.refused + 1
   where b.org_id = p_org_id and b.operator_id = p_operator_id and b.tool_name = p_tool_name;
  return -1;
end
$$;
comment on function tenantgate.rate_try(uuid, uuid, text, integer, double precision) is
  'Internal: take a token; refusals counted so far (>= 0), or -1 when rate limited.';

-- A bucket of denial records per claimed org; false (and counted) when empty.
create function tenantgate.denial_take(p_claimed_org uuid, p_burst integer,
                                       p_per_second double precision)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  insert into tenantgate.denial_buckets as b (claimed_org, tokens, updated_at)
  values (p_claimed_org, p_burst - 1, v_now)
  on conflict (claimed_org) do update
    set tokens = least(p_burst::double precision,
                       b.tokens + extract(epoch from v_now - b.updated_at)::double precision
                                  * p_per_second) - 1,
        updated_at = v_now
    where least(p_burst::double precision,
                b.tokens + extract(epoch from v_now - b.updated_at)::double precision
                           * p_per_second) >= 1;
  if found then
    return true;
  end if;
  update tenantgate.denial_buckets b set suppressed = b.suppressed + 1
   where b.claimed_org = p_claimed_org;
  return false;
end
$$;
comment on function tenantgate.denial_take(uuid, integer, double precision) is
  'Internal: may one more denial be recorded for this claimed org?';

-- An unverified caller. The claimed org is never looked up, so the work (and the time) is the
-- same whether or not it exists; no chain is locked; at most 20 records per claimed org in a
-- burst, then 1 per second, and at most 50 per second for all claimed orgs together.
create function tenantgate.record_denial(p_claimed_org uuid, p_tool_name text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_org uuid := coalesce(p_claimed_org, '00000000-0000-0000-0000-000000000000'::uuid);
begin
  if tenantgate.denial_take(v_org, 20, 1)
     and tenantgate.denial_take('ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid, 200, 50) then
    insert into tenantgate.denials (claimed_org, tool_name, reason)
    values (v_org, pg_catalog.left(coalesce(p_tool_name, ''), 64), 'session_not_verified');
  end if;
end
$$;
comment on function tenantgate.record_denial(uuid, text) is
  'Internal: record a call whose session could not be verified (rate-limited, outside the chain).';

-- A refusal of a verified session: rate-limited like calls (bucket "*refused*"), audited while the
-- bucket allows, counted otherwise.
create function tenantgate.gate_refuse(
  p_org_id uuid, p_session_id uuid, p_operator_id uuid, p_customer_id uuid,
  p_request_key text, p_tool_name text, p_status text, p_detail jsonb, p_extra jsonb
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_refused bigint;
begin
  v_refused := tenantgate.rate_try(p_org_id, p_operator_id, '*refused*', 30, 1);
  if v_refused < 0 then
    return '{"status": "rate_limited"}'::jsonb;
  end if;
  perform tenantgate.audit_append_row(
    p_org_id, p_session_id, p_operator_id, p_customer_id, p_request_key, p_tool_name, 'denied',
    p_detail || case when v_refused > 0
                     then pg_catalog.jsonb_build_object('rate_limited_before', v_refused)
                     else '{}'::jsonb end);
  return pg_catalog.jsonb_build_object('status', p_status) || coalesce(p_extra, '{}'::jsonb);
end
$$;
comment on function tenantgate.gate_refuse(uuid, uuid, uuid, uuid, text, text, text, jsonb, jsonb) is
  'Internal: audit (rate-limited) and answer a refusal of a verified session.';

-- Cut the longest text fields of a row until it fits, marking each cut; never drops the row.
create function tenantgate.fit_row(p_row jsonb, p_budget integer)
returns jsonb
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_row  jsonb := p_row;
  v_key  text;
  v_len  integer;
  v_over integer;
begin
  for v_key, v_len in
    select e.key, pg_catalog.octet_length(e.value #>> '{}') from pg_catalog.jsonb_each(p_row) e
     where pg_catalog.jsonb_typeof(e.value) = 'string'
     order by 2 desc
  loop
    v_over := pg_catalog.octet_length(v_row::text) - p_budget;
    exit when v_over <= 0;
    v_row := pg_catalog.jsonb_set(v_row, array[v_key], pg_catalog.to_jsonb(
      pg_catalog.left(v_row ->> v_key, greatest(0, pg_catalog.length(v_row ->> v_key)
                                                               - v_over - 40))
      || ' [truncated by tenantgate]'));
  end loop;
  return v_row;
end
$$;
comment on function tenantgate.fit_row(jsonb, integer) is
  'Internal: shorten a row''s longest text fields (with a marker) to fit a byte budget.';

create function tenantgate.call_tool(
  p_org_id         uuid,
  p_customer_id    uuid,
  p_session_secret text,
  p_request_key    text,
  p_tool_name      text,
  p_args           jsonb
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_name     text := pg_catalog.left(coalesce(p_tool_name, ''), 64);
  v_ses      record;
  v_tool     record;
  v_check    jsonb;
  v_args     jsonb;
  v_hash     bytea;
  v_detail   jsonb;
  v_refused  bigint;
  v_req      record;
  v_appr     record;
  v_approval uuid;
  v_preview  jsonb;
  v_masked   text[];
  v_balance  bigint;
  v_row      jsonb;
  v_items    jsonb := '[]';
  v_rows     integer := 0;
  v_bytes    integer := 2;
  v_trunc    boolean := false;
  v_result   jsonb;
  v_up       record;
  v_seq      bigint;
begin
  -- 1. Context and session. The settings outlive this call until the transaction ends; the
  -- enrolled tables' policies read them (and verify them again) while the tool function runs.
  perform pg_catalog.set_config('app.org_id', coalesce(p_org_id::text, ''), true),
          pg_catalog.set_config('app.customer_id', coalesce(p_customer_id::text, ''), true),
          pg_catalog.set_config('app.session_secret', coalesce(p_session_secret, ''), true);
  select * into v_ses from tenantgate.gate_session(p_org_id, p_customer_id, p_session_secret);
  if not found then
    perform tenantgate.record_denial(p_org_id, v_name);
    return '{"status": "not_found"}'::jsonb;
  end if;

  -- 2. The tool, from this session's catalog only.
  select t.required_scope, t.credit_cost, t.approval, t.rate_burst, t.rate_per_second,
         d.kind, d.access, d.returns, d.parameters, d.withheld, d.sensitive, d.has_preview,
         d.max_rows, d.max_bytes, d.version,
         (select coalesce(max(case sc.max_class when 'sensitive' then 2 when 'internal' then 1
                                                else 0 end), 1)
            from tenantgate.scope_classes sc where sc.scope = any(v_ses.scopes)) as ceiling
    into v_tool
    from tenantgate.tools t
    join tenantgate.tool_definitions d on d.tool_name = t.tool_name
   where t.org_id = v_ses.org_id and t.connector_id = v_ses.connector_id
     and t.tool_name = v_name and t.enabled and t.required_scope = any(v_ses.scopes);
  if not found then
    return tenantgate.gate_refuse(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
      v_ses.customer_id, p_request_key, v_name, 'not_found', '{"reason": "not_in_catalog"}', null);
  end if;

  -- 3. Arguments, against the declared parameters (defaults filled in).
  v_check := tenantgate.tool_arguments(v_tool.parameters, coalesce(p_args, '{}'::jsonb));
  if v_check ? 'errors' then
    return tenantgate.gate_refuse(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
      v_ses.customer_id, p_request_key, v_name, 'invalid_arguments',
      '{"reason": "invalid_arguments"}', pg_catalog.jsonb_build_object('errors', v_check -> 'errors'));
  end if;
  v_args := v_check -> 'args';
  v_hash := pg_catalog.sha256(pg_catalog.convert_to(v_args::text, 'UTF8'));
  v_detail := pg_catalog.jsonb_build_object('args_sha256', pg_catalog.encode(v_hash, 'hex'));

  -- 4. The catalog's rate limit.
  v_refused := tenantgate.rate_try(v_ses.org_id, v_ses.operator_id, v_name, v_tool.rate_burst,
                                   v_tool.rate_per_second);
  if v_refused < 0 then
    return '{"status": "rate_limited"}'::jsonb;
  end if;
  if v_refused > 0 then
    v_detail := v_detail || pg_catalog.jsonb_build_object('rate_limited_before', v_refused);
  end if;

  -- 5. The request key, bound to this tool and these arguments.
  if p_request_key is not null then
    if p_request_key !~ '^[A-Za-z0-9._:-]{1,100}$' then
      return tenantgate.gate_refuse(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
        v_ses.customer_id, null, v_name, 'invalid_arguments', '{"reason": "bad_request_key"}',
        '{"errors": [{"loc": ["_meta", "request-id"], "msg": "1 to 100 of A-Z a-z 0-9 . _ : -"}]}');
    end if;
    insert into tenantgate.tool_requests (org_id, session_id, request_key, tool_name, args_hash)
    values (v_ses.org_id, v_ses.session_id, p_request_key, v_name, v_hash)
    on conflict (org_id, session_id, request_key) do nothing;
    if not found then
      select r.tool_name, r.args_hash, r.outcome into v_req
        from tenantgate.tool_requests r
       where r.org_id = v_ses.org_id and r.session_id = v_ses.session_id
         and r.request_key = p_request_key;
      if v_req.tool_name <> v_name or v_req.args_hash <> v_hash then
        return tenantgate.gate_refuse(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
          v_ses.customer_id, p_request_key, v_name, 'conflict',
          '{"reason": "request_key_reused"}', null);
      end if;
      if v_req.outcome is not null then
        perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
          v_ses.customer_id, p_request_key, v_name, 'replayed', v_detail);
        return v_req.outcome || '{"replayed": true}'::jsonb;
      end if;
    end if;
  end if;

  -- 6. Approval.
  if v_tool.approval <> 'none' then
    select a.approval_id, a.status into v_appr
      from tenantgate.approvals a
     where a.org_id = v_ses.org_id and a.session_id = v_ses.session_id and a.tool_name = v_name
       and a.args_hash = v_hash and a.status in ('pending', 'approved', 'denied')
       and a.expires_at > pg_catalog.now()
     order by a.created_at desc
     limit 1;
    if found and v_appr.status = 'denied' then
      perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
        v_ses.customer_id, p_request_key, v_name, 'denied',
        v_detail || pg_catalog.jsonb_build_object('reason', 'approval_denied',
                                                  'approval_id', v_appr.approval_id));
      return pg_catalog.jsonb_build_object('status', 'denied', 'approval_id', v_appr.approval_id);
    end if;
    if not found then
      -- The target must exist for this session before anyone is asked.
      if v_tool.has_preview then
        select t.r into v_preview
          from tenantgate_tools.dispatch(v_name || '__preview', v_ses.org_id, v_ses.customer_id,
                                         v_args) t(r)
         limit 1;
      end if;
      if v_preview is null and v_tool.kind = 'http' then
        v_preview := pg_catalog.jsonb_build_object('upstream_call', v_args);  -- no table to read
      end if;
      if v_preview is null then
        perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
          v_ses.customer_id, p_request_key, v_name, 'denied',
          v_detail || '{"reason": "no_target"}'::jsonb);
        return '{"status": "not_found"}'::jsonb;
      end if;
      insert into tenantgate.approvals (org_id, session_id, operator_id, customer_id, tool_name,
                                        args_hash, arguments, preview)
      values (v_ses.org_id, v_ses.session_id, v_ses.operator_id, v_ses.customer_id, v_name,
              v_hash, v_args, v_preview)
      returning approval_id, status into v_appr;
    end if;
    if v_appr.status = 'pending' then
      perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
        v_ses.customer_id, p_request_key, v_name, 'approval_required',
        v_detail || pg_catalog.jsonb_build_object('approval_id', v_appr.approval_id));
      return pg_catalog.jsonb_build_object('status', 'approval_required',
        'approval_id', v_appr.approval_id, 'approver', v_tool.approval);
    end if;
    v_approval := v_appr.approval_id;
    v_detail := v_detail || pg_catalog.jsonb_build_object('approval_id', v_approval);
  end if;

  -- 7. Charge, run, shape: one subtransaction, so any failure undoes the charge and the
  -- approval's use, and the refusal below is still audited.
  v_masked := case when v_tool.ceiling < 2 then v_tool.sensitive else '{}'::text[] end;
  begin
    if v_tool.credit_cost > 0 then
      -- The conditional update is the race-safe spend (never below zero at READ COMMITTED);
      -- every call is its own charge, so there is no request id to claim first.
      update tenantgate.credit_accounts a
         set balance = a.balance - v_tool.credit_cost, updated_at = pg_catalog.now()
       where a.org_id = v_ses.org_id and a.balance >= v_tool.credit_cost
      returning a.balance into v_balance;
      if not found then
        raise exception using errcode = 'TG402', message = 'tenantgate: not enough credits';
      end if;
      insert into tenantgate.credit_ledger
        (org_id, request_id, kind, amount, outcome, balance_after, session_id, tool_name)
      values (v_ses.org_id, pg_catalog.gen_random_uuid()::text, 'spend', v_tool.credit_cost,
              'charged', v_balance, v_ses.session_id, v_name);
    end if;
    if v_approval is not null then
      update tenantgate.approvals a set status = 'used', used_at = pg_catalog.now()
       where a.org_id = v_ses.org_id and a.approval_id = v_approval and a.status = 'approved';
      if not found then
        raise exception using errcode = 'TG409', message = 'tenantgate: approval already used';
      end if;
    end if;
    if v_tool.kind = 'http' then
      -- Only this session's customer's sealed key, and only for an admitted, charged call.
      select c.base_url, c.auth_header, s.ciphertext, s.key_id into v_up
        from tenantgate.connectors c
        left join tenantgate.customer_secrets s
          on s.org_id = c.org_id and s.customer_id = v_ses.customer_id
       where c.org_id = v_ses.org_id and c.connector_id = v_ses.connector_id;
      if v_up.ciphertext is null or v_up.base_url is null then
        raise exception using errcode = 'TG424', message = 'tenantgate: no upstream configured';
      end if;
    else
      -- Run the tool; withheld (secret, unclassified) columns never leave; keep rows in order
      -- while they fit max_rows and max_bytes.
      select coalesce(pg_catalog.jsonb_agg(s.r order by s.n)
                        filter (where s.n <= v_tool.max_rows and s.cum <= v_tool.max_bytes),
                      '[]'::jsonb),
             pg_catalog.count(*)::integer,
             coalesce(pg_catalog.bool_or(s.n > v_tool.max_rows or s.cum > v_tool.max_bytes), false),
             (pg_catalog.array_agg(s.r order by s.n))[1]
        into v_items, v_rows, v_trunc, v_row
        from (select x.n, x.r,
                     pg_catalog.sum(pg_catalog.octet_length(x.r::text) + 1) over (order by x.n)
                     + 1 as cum
                from (select t.r - v_tool.withheld as r, pg_catalog.row_number() over () as n
                        from tenantgate_tools.dispatch(v_name, v_ses.org_id, v_ses.customer_id,
                                                       v_args) t(r)
                       limit v_tool.max_rows + 1) x) s;
      if v_trunc and pg_catalog.jsonb_array_length(v_items) = 0 and v_row is not null then
        v_items := pg_catalog.jsonb_build_array(tenantgate.fit_row(v_row, v_tool.max_bytes - 3));
      end if;
      if pg_catalog.cardinality(v_masked) > 0 and pg_catalog.jsonb_array_length(v_items) > 0 then
        select pg_catalog.jsonb_agg(tenantgate.mask_row(e.r, v_masked) order by e.n) into v_items
          from pg_catalog.jsonb_array_elements(v_items) with ordinality e(r, n);
      end if;
      v_bytes := pg_catalog.octet_length(v_items::text);
    end if;
    if v_tool.kind = 'sql' and v_tool.access = 'write' and v_rows = 0 then
      raise exception using errcode = 'TG404', message = 'tenantgate: nothing to change';
    end if;
  exception
    when sqlstate 'TG402' then
      perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
        v_ses.customer_id, p_request_key, v_name, 'no_credit', v_detail);
      return '{"status": "no_credit"}'::jsonb;
    when sqlstate 'TG404' then
      perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
        v_ses.customer_id, p_request_key, v_name, 'denied', v_detail || '{"reason": "no_row"}');
      return '{"status": "not_found"}'::jsonb;
    when sqlstate 'TG424' then
      perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
        v_ses.customer_id, p_request_key, v_name, 'error',
        v_detail || '{"reason": "upstream_not_configured"}');
      return '{"status": "unconfigured"}'::jsonb;
    when sqlstate 'TG409' then
      perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
        v_ses.customer_id, p_request_key, v_name, 'denied',
        v_detail || '{"reason": "approval_used"}');
      return '{"status": "denied"}'::jsonb;
    when others then
      perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
        v_ses.customer_id, p_request_key, v_name, 'error',
        v_detail || pg_catalog.jsonb_build_object('sqlstate', sqlstate));
      return pg_catalog.jsonb_build_object('status', 'error', 'sqlstate', sqlstate);
  end;

  -- 8. The audit row, after the read, with what left; then the answer.
  if v_tool.kind = 'http' then
    -- The charge stands whatever upstream answers: the call was admitted and attempted. The
    -- outcome follows as an 'upstream' row (tenantgate.upstream_outcome).
    select a.seq into v_seq from tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id,
      v_ses.operator_id, v_ses.customer_id, p_request_key, v_name, 'allowed',
      v_detail || '{"upstream": true}'::jsonb) a;
    insert into tenantgate.upstream_admissions (org_id, audit_seq, session_id, tool_name)
    values (v_ses.org_id, v_seq, v_ses.session_id, v_name);
    return pg_catalog.jsonb_build_object(
      'status', 'upstream', 'admission', v_seq, 'approval_id', v_approval,
      'version', v_tool.version, 'args', v_args, 'ceiling', v_tool.ceiling,
      'upstream', pg_catalog.jsonb_build_object(
        'base_url', v_up.base_url, 'auth_header', v_up.auth_header,
        'ciphertext', pg_catalog.encode(v_up.ciphertext, 'base64'), 'key_id', v_up.key_id));
  end if;
  v_detail := v_detail || pg_catalog.jsonb_build_object(
    'rows', pg_catalog.jsonb_array_length(v_items), 'bytes', v_bytes, 'truncated', v_trunc);
  if pg_catalog.cardinality(v_masked) > 0 then
    v_detail := v_detail || pg_catalog.jsonb_build_object('masked', v_masked);
  end if;
  perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
    v_ses.customer_id, p_request_key, v_name, 'allowed', v_detail);
  if v_tool.returns = 'one' then
    if pg_catalog.jsonb_array_length(v_items) = 0 then
      v_result := '{"status": "not_found"}'::jsonb;
    else
      v_result := pg_catalog.jsonb_build_object('status', 'ok', 'result', v_items -> 0);
    end if;
  else
    v_result := pg_catalog.jsonb_build_object('status', 'ok', 'result',
      pg_catalog.jsonb_build_object('items', v_items, 'truncated', v_trunc));
  end if;
  if pg_catalog.cardinality(v_masked) > 0 and v_result ? 'result' then
    v_result := pg_catalog.jsonb_set(v_result, '{result,_masked}', pg_catalog.to_jsonb(v_masked));
  end if;
  if p_request_key is not null and v_tool.access = 'write' then
    update tenantgate.tool_requests r set outcome = v_result
     where r.org_id = v_ses.org_id and r.session_id = v_ses.session_id
       and r.request_key = p_request_key;
  end if;
  return v_result;
end
$$;
comment on function tenantgate.call_tool(uuid, uuid, text, text, text, jsonb) is
  'The gate: verify the session, find the tool in its catalog, check arguments, rate limit, bind '
  'the request key, approval, charge, run, shape, audit; one statement, one answer '
  '({"status": ...}). Org first: the Citus distribution argument.';

-- The HTTP half's outcome, reported once per admitted call by the session that made it. The
-- mediator can add this 'upstream' row and nothing else: no 'allowed' row, no charge, no refund.
create function tenantgate.upstream_outcome(p_org_id uuid, p_customer_id uuid,
                                            p_session_secret text, p_admission bigint,
                                            p_http_status integer, p_bytes bigint,
                                            p_latency_ms integer, p_error text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ses record;
  v_adm record;
begin
  select * into v_ses from tenantgate.gate_session(p_org_id, p_customer_id, p_session_secret);
  if not found then
    return false;
  end if;
  update tenantgate.upstream_admissions a set reported = true
   where a.org_id = v_ses.org_id and a.audit_seq = p_admission
     and a.session_id = v_ses.session_id and not a.reported
  returning a.tool_name into v_adm;
  if not found then
    return false;
  end if;
  perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
    v_ses.customer_id, null, v_adm.tool_name, 'upstream',
    pg_catalog.jsonb_build_object(
      'admission', p_admission,
      'http_status', least(greatest(coalesce(p_http_status, 0), 0), 999),
      'bytes', least(greatest(coalesce(p_bytes, 0), 0), 1073741824),
      'latency_ms', least(greatest(coalesce(p_latency_ms, 0), 0), 3600000),
      'error', pg_catalog.left(pg_catalog.regexp_replace(coalesce(p_error, ''), '[^A-Za-z_]', '', 'g'), 40)));
  return true;
end
$$;
comment on function tenantgate.upstream_outcome(uuid, uuid, text, bigint, integer, bigint, integer,
                                                text) is
  'Record, once, the upstream outcome of an admitted HTTP-backed call of this session: status, '
  'bytes, latency and an error class name (letters and _ only; never a message).';

create function tenantgate.list_tools(p_org_id uuid, p_customer_id uuid, p_session_secret text)
returns jsonb
language plpgsql  -- not sql: Citus cannot plan a SQL function's parameters on a distributed table
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ses record;
begin
  -- The session first, then the catalog: two plain statements, each routed to the org's node.
  select * into v_ses from tenantgate.gate_session(p_org_id, p_customer_id, p_session_secret);
  if not found then
    return '[]'::jsonb;
  end if;
  return (select coalesce(pg_catalog.jsonb_agg(
           pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
             'name', d.tool_name,
             'title', nullif(d.title, ''),
             'description', coalesce(nullif(t.description, ''), d.description),
             'inputSchema', d.input_schema,
             'outputSchema', d.output_schema,
             'annotations', d.annotations))
           order by d.tool_name), '[]'::jsonb)
    from tenantgate.tools t
    join tenantgate.tool_definitions d on d.tool_name = t.tool_name
   where t.org_id = v_ses.org_id and t.connector_id = v_ses.connector_id and t.enabled
     and t.required_scope = any(v_ses.scopes));
end
$$;
comment on function tenantgate.list_tools(uuid, uuid, text) is
  'tools/list: the verified session''s enabled, in-scope tools as MCP tool objects; [] otherwise.';

-- Host approval: the session's own operator answers through the MCP host (elicitation). Only for
-- tools whose catalog row says approval = 'host'; this level trusts the mediator's word.
drop function if exists tenantgate.approval_answer(uuid, boolean);
create function tenantgate.approval_answer(p_org_id uuid, p_customer_id uuid,
                                           p_session_secret text, p_approval_id uuid,
                                           p_approve boolean)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ses record;
  v_app record;
begin
  select * into v_ses from tenantgate.gate_session(p_org_id, p_customer_id, p_session_secret);
  if not found or p_approve is null then
    return 'not_found';
  end if;
  update tenantgate.approvals a
     set status = case when p_approve then 'approved' else 'denied' end,
         decided_at = pg_catalog.now(), decided_by = v_ses.operator_id, decided_via = 'host'
   where a.org_id = v_ses.org_id and a.session_id = v_ses.session_id
     and a.approval_id = p_approval_id and a.status = 'pending'
     and a.expires_at > pg_catalog.now()
     and exists (select 1 from tenantgate.tools t
                  where t.org_id = v_ses.org_id and t.connector_id = v_ses.connector_id
                    and t.tool_name = a.tool_name and t.approval = 'host')
  returning a.tool_name, a.status into v_app;
  if not found then
    return 'not_found';
  end if;
  perform tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
    v_ses.customer_id, null, v_app.tool_name,
    case when p_approve then 'approved' else 'approval_denied' end,
    pg_catalog.jsonb_build_object('approval_id', p_approval_id, 'via', 'host'));
  return v_app.status;
end
$$;
comment on function tenantgate.approval_answer(uuid, uuid, text, uuid, boolean) is
  'The session''s own operator answers a pending approval through the MCP host; tools with '
  'approval = host only. Returns approved, denied or not_found.';

-- Operator approval, four eyes: an active operator of the same org who is not the requester.
create or replace function tenantgate.approval_decide(p_org_id uuid, p_approval_id uuid,
                                                      p_operator_id uuid, p_approve boolean)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_app record;
begin
  if not exists (select 1 from tenantgate.operators o join tenantgate.orgs g using (org_id)
                  where o.org_id = p_org_id and o.operator_id = p_operator_id
                    and o.status = 'active' and g.status = 'active') then
    raise exception using errcode = 'P0002', message = 'tenantgate: not found or inactive';
  end if;
  select a.operator_id, a.session_id, a.customer_id, a.tool_name into v_app
    from tenantgate.approvals a
   where a.org_id = p_org_id and a.approval_id = p_approval_id and a.status = 'pending'
     and a.expires_at > pg_catalog.now()
     for update;
  if not found then
    raise exception using errcode = 'P0002', message = 'tenantgate: no such pending approval',
      hint = 'It may have been decided already, or expired: list pending approvals again.';
  end if;
  if v_app.operator_id = p_operator_id then
    raise exception using errcode = '42501',
      message = 'tenantgate: an operator cannot decide their own request',
      hint = 'Ask another active operator of the org to decide it.';
  end if;
  update tenantgate.approvals a
     set status = case when p_approve then 'approved' else 'denied' end,
         decided_at = pg_catalog.now(), decided_by = p_operator_id, decided_via = 'operator'
   where a.org_id = p_org_id and a.approval_id = p_approval_id;
  perform tenantgate.audit_append_row(p_org_id, v_app.session_id, p_operator_id,
    v_app.customer_id, null, v_app.tool_name,
    case when p_approve then 'approved' else 'approval_denied' end,
    pg_catalog.jsonb_build_object('approval_id', p_approval_id,
                                  'requested_by', v_app.operator_id, 'via', 'operator'));
  return case when p_approve then 'approved' else 'denied' end;
end
$$;
comment on function tenantgate.approval_decide(uuid, uuid, uuid, boolean) is
  'Another active operator of the same org (never the requester) approves or denies a pending, '
  'unexpired approval; audited. Returns approved or denied.';
