-- down/89_fastgate.sql: back to sql/88_gate's gate, one balance row per org and one bucket row
-- per (org, operator, tool). The function bodies below are those of the files named in each
-- heading, restated with `create or replace` (sql/89_fastgate replaced them in place).

set local role tenantgate_owner;

-- Credits (sql/30_tables/30_credits.sql): each org's slots add up to its single balance row again.
alter view tenantgate.credit_accounts rename to credit_accounts_of_slots;
create table tenantgate.credit_accounts (
  org_id      uuid        not null references tenantgate.orgs (org_id),
  balance     bigint      not null default 0 check (balance >= 0),
  updated_at  timestamptz not null default pg_catalog.now(),
  primary key (org_id)
);
comment on table tenantgate.credit_accounts is 'One credit balance per org.';
insert into tenantgate.credit_accounts (org_id, balance, updated_at)
select v.org_id, v.balance, v.updated_at from tenantgate.credit_accounts_of_slots v;
drop view tenantgate.credit_accounts_of_slots;
drop function tenantgate.credit_accounts_write();
alter table tenantgate.credit_accounts enable row level security;
alter table tenantgate.credit_accounts force row level security;
create policy owner_all on tenantgate.credit_accounts for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.credit_accounts for select to tenantgate_admin using (true);
grant select on tenantgate.credit_accounts to tenantgate_admin;

-- sql/40_functions/40_credits.sql
create or replace function tenantgate.spend_credits_for(
  p_org_id uuid, p_session_id uuid, p_request_id text, p_amount bigint, p_tool_name text
)
returns table (charged boolean, replayed boolean, balance bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_balance  bigint;
  v_prior    record;
begin
  if p_amount is null or p_amount <= 0 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('tenantgate: credit amount must be positive, got %s', p_amount);
  end if;
  if p_request_id is null or pg_catalog.length(p_request_id) not between 1 and 200 then
    raise exception using errcode = '22023',
      message = 'tenantgate: request id must be 1 to 200 characters';
  end if;

  -- Claim the request id. A concurrent duplicate blocks here until the first one commits.
  insert into tenantgate.credit_ledger
    (org_id, request_id, kind, amount, outcome, session_id, tool_name)
  values (p_org_id, p_request_id, 'spend', p_amount, 'pending', p_session_id, p_tool_name)
  on conflict (org_id, request_id) do nothing;

  if not found then
    -- A retry: answer exactly what the first attempt answered, charge nothing.
    select l.kind, l.amount, l.outcome, l.balance_after, l.tool_name into v_prior
      from tenantgate.credit_ledger l
     where l.org_id = p_org_id and l.request_id = p_request_id;
    if v_prior.kind <> 'spend' or v_prior.amount <> p_amount
       or v_prior.tool_name is distinct from p_tool_name then
      raise exception using errcode = '22023',
        message = 'tenantgate: request id already used for a different charge',
        hint = 'Use a fresh request id for every distinct tool call.';
    end if;
    return query select v_prior.outcome = 'charged', true, v_prior.balance_after;
    return;
  end if;

  update tenantgate.credit_accounts a
     set balance = a.balance - p_amount, updated_at = pg_catalog.now()
   where a.org_id = p_org_id and a.balance >= p_amount
  returning a.balance into v_balance;

  if found then
    update tenantgate.credit_ledger l
       set outcome = 'charged', balance_after = v_balance
     where l.org_id = p_org_id and l.request_id = p_request_id;
    return query select true, false, v_balance;
  else
    select coalesce(max(a.balance), 0) into v_balance
      from tenantgate.credit_accounts a where a.org_id = p_org_id;
    update tenantgate.credit_ledger l
       set outcome = 'refused', balance_after = v_balance
     where l.org_id = p_org_id and l.request_id = p_request_id;
    return query select false, false, v_balance;
  end if;
end
$$;

create or replace function tenantgate.grant_credits(p_org_id uuid, p_amount bigint, p_request_id text)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_balance bigint;
begin
  if p_amount is null or p_amount <= 0 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('tenantgate: credit amount must be positive, got %s', p_amount);
  end if;
  if not exists (select 1 from tenantgate.orgs o where o.org_id = p_org_id) then
    raise exception using errcode = 'P0002', message = 'tenantgate: org not found';
  end if;

  insert into tenantgate.credit_ledger (org_id, request_id, kind, amount, outcome)
  values (p_org_id, p_request_id, 'grant', p_amount, 'granted')
  on conflict (org_id, request_id) do nothing;

  if found then
    insert into tenantgate.credit_accounts as a (org_id, balance)
    values (p_org_id, p_amount)
    on conflict (org_id) do update  -- excluded.updated_at: Citus takes no now() in DO UPDATE
      set balance = a.balance + excluded.balance, updated_at = excluded.updated_at
    returning a.balance into v_balance;
    update tenantgate.credit_ledger l set balance_after = v_balance
     where l.org_id = p_org_id and l.request_id = p_request_id;
  else
    select coalesce(max(a.balance), 0) into v_balance
      from tenantgate.credit_accounts a where a.org_id = p_org_id;
  end if;
  return v_balance;
end
$$;

drop function tenantgate.credit_take(uuid, bigint, integer);
drop function tenantgate.credit_spread(uuid, bigint, bigint);
drop table tenantgate.credit_slots;

-- Rate limits: one bucket row per (org, operator, tool); split buckets keep their slot 0.
delete from tenantgate.rate_buckets b where b.slot <> 0;
alter table tenantgate.rate_buckets drop constraint rate_buckets_pkey;
alter table tenantgate.rate_buckets drop column slot;
alter table tenantgate.rate_buckets add primary key (org_id, operator_id, tool_name);
alter table tenantgate.rate_buckets reset (fillfactor);

-- sql/88_gate/40_call.sql
create or replace function tenantgate.rate_try(p_org_id uuid, p_operator_id uuid, p_tool_name text,
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

create or replace function tenantgate.call_tool(
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

-- sql/88_gate/10_tool_role.sql
create or replace function tenantgate.gate_tenant()
returns table (org_id uuid, customer_id uuid)
language sql
stable
rows 1
set search_path = pg_catalog, pg_temp
as $$
  select tenantgate.setting_uuid('app.org_id'), tenantgate.setting_uuid('app.customer_id')
$$;
