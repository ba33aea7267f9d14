-- 89_pgcpu/20_call.sql: the gate of sql/89_fastgate/30_call.sql, one plan node fewer per call.
--
-- The only change: the tool's rows are numbered by the function scan itself (WITH ORDINALITY)
-- instead of a row_number() window over it. Both number the rows in the order the tool returns
-- them, so the same rows are kept in the same order; the plan loses its WindowAgg node.
-- Everything else (order, refusals, audit rows, answers) is that of 89_fastgate/30_call.sql.

set local role tenantgate_owner;

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
  -- enrolled tables' policies (for tenantgate_tool) read them while the tool function runs.
  perform pg_catalog.set_config('app.org_id', coalesce(p_org_id::text, ''), true),
          pg_catalog.set_config('app.customer_id', coalesce(p_customer_id::text, ''), true),
          pg_catalog.set_config('app.session_secret', coalesce(p_session_secret, ''), true);
  -- 2. ... and the tool, from this session's catalog only, in the same statement: a session
  -- row with no tool is a verified session asking for a tool it does not have.
  select ls.org_id, ls.session_id, ls.operator_id, ls.connector_id, ls.customer_id, ls.scopes,
         x.tool_name is not null as tool_found, x.*
    into v_ses
    from tenantgate.live_sessions ls
    left join lateral (
      select t.tool_name, t.required_scope, t.credit_cost, t.approval, t.rate_burst,
             t.rate_per_second, d.kind, d.access, d.returns, d.parameters, d.withheld,
             d.sensitive, d.has_preview, d.max_rows, d.max_bytes, d.version,
             (select coalesce(max(case sc.max_class when 'sensitive' then 2 when 'internal' then 1
                                                    else 0 end), 1)
                from tenantgate.scope_classes sc where sc.scope = any(ls.scopes)) as ceiling
        from tenantgate.tools t
        join tenantgate.tool_definitions d on d.tool_name = t.tool_name
       where t.org_id = ls.org_id and t.connector_id = ls.connector_id
         and t.tool_name = v_name and t.enabled and t.required_scope = any(ls.scopes)
    ) x on true
   where ls.org_id = p_org_id
     and ls.secret_hash = pg_catalog.sha256(pg_catalog.convert_to(p_session_secret, 'UTF8'))
     and ls.customer_id = p_customer_id;
  if not found then
    perform tenantgate.record_denial(p_org_id, v_name);
    return '{"status": "not_found"}'::jsonb;
  end if;
  if not v_ses.tool_found then
    return tenantgate.gate_refuse(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
      v_ses.customer_id, p_request_key, v_name, 'not_found', '{"reason": "not_in_catalog"}', null);
  end if;

  -- 3. Arguments, against the declared parameters (defaults filled in).
  v_check := tenantgate.tool_arguments(v_ses.parameters, coalesce(p_args, '{}'::jsonb));
  if v_check ? 'errors' then
    return tenantgate.gate_refuse(v_ses.org_id, v_ses.session_id, v_ses.operator_id,
      v_ses.customer_id, p_request_key, v_name, 'invalid_arguments',
      '{"reason": "invalid_arguments"}', pg_catalog.jsonb_build_object('errors', v_check -> 'errors'));
  end if;
  v_args := v_check -> 'args';
  v_hash := pg_catalog.sha256(pg_catalog.convert_to(v_args::text, 'UTF8'));
  v_detail := pg_catalog.jsonb_build_object('args_sha256', pg_catalog.encode(v_hash, 'hex'));

  -- 4. The catalog's rate limit.
  v_refused := tenantgate.rate_try(v_ses.org_id, v_ses.operator_id, v_name, v_ses.rate_burst,
                                   v_ses.rate_per_second);
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
  if v_ses.approval <> 'none' then
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
      if v_ses.has_preview then
        select t.r into v_preview
          from tenantgate_tools.dispatch(v_name || '__preview', v_ses.org_id, v_ses.customer_id,
                                         v_args) t(r)
         limit 1;
      end if;
      if v_preview is null and v_ses.kind = 'http' then
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
        'approval_id', v_appr.approval_id, 'approver', v_ses.approval);
    end if;
    v_approval := v_appr.approval_id;
    v_detail := v_detail || pg_catalog.jsonb_build_object('approval_id', v_approval);
  end if;

  -- 7. Charge, run, shape: one subtransaction, so any failure undoes the charge and the
  -- approval's use, and the refusal below is still audited.
  v_masked := case when v_ses.ceiling < 2 then v_ses.sensitive else '{}'::text[] end;
  begin
    if v_ses.credit_cost > 0 then
      -- From one of the org's credit slots (never below zero at READ COMMITTED, never short
      -- while the org's total covers it); every call is its own charge, so there is no
      -- request id to claim first. The session picks the slot to start from.
      v_balance := tenantgate.credit_take(v_ses.org_id, v_ses.credit_cost,
                                          pg_catalog.hashtext(v_ses.session_id::text));
      if v_balance is null then
        raise exception using errcode = 'TG402', message = 'tenantgate: not enough credits';
      end if;
      insert into tenantgate.credit_ledger
        (org_id, request_id, kind, amount, outcome, balance_after, session_id, tool_name)
      values (v_ses.org_id, pg_catalog.gen_random_uuid()::text, 'spend', v_ses.credit_cost,
              'charged', v_balance, v_ses.session_id, v_name);
    end if;
    if v_approval is not null then
      update tenantgate.approvals a set status = 'used', used_at = pg_catalog.now()
       where a.org_id = v_ses.org_id and a.approval_id = v_approval and a.status = 'approved';
      if not found then
        raise exception using errcode = 'TG409', message = 'tenantgate: approval already used';
      end if;
    end if;
    if v_ses.kind = 'http' then
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
      -- The rows, at most one more than max_rows, measured once as a whole. When they fit
      -- (the common case) that is the answer; otherwise keep rows in order while each running
      -- total fits, exactly as sql/88_gate/40_call.sql does. The whole array's text is never
      -- shorter than any running total of its rows, so both ways keep the same rows.
      select coalesce(pg_catalog.jsonb_agg(x.r order by x.n), '[]'::jsonb),
             pg_catalog.count(*)::integer
        into v_items, v_rows
        from (select t.r - v_ses.withheld as r, t.n
                from tenantgate_tools.dispatch(v_name, v_ses.org_id, v_ses.customer_id,
                                               v_args) with ordinality t(r, n)
               limit v_ses.max_rows + 1) x;
      v_bytes := pg_catalog.octet_length(v_items::text);
      if v_rows > v_ses.max_rows or v_bytes > v_ses.max_bytes then
        select coalesce(pg_catalog.jsonb_agg(s.r order by s.n)
                          filter (where s.n <= v_ses.max_rows and s.cum <= v_ses.max_bytes),
                        '[]'::jsonb),
               coalesce(pg_catalog.bool_or(s.n > v_ses.max_rows or s.cum > v_ses.max_bytes),
                        false),
               (pg_catalog.array_agg(s.r order by s.n))[1]
          into v_items, v_trunc, v_row
          from (select e.n, e.r,
                       pg_catalog.sum(pg_catalog.octet_length(e.r::text) + 1) over (order by e.n)
                       + 1 as cum
                  from pg_catalog.jsonb_array_elements(v_items) with ordinality e(r, n)) s;
      end if;
      if v_trunc and pg_catalog.jsonb_array_length(v_items) = 0 and v_row is not null then
        v_items := pg_catalog.jsonb_build_array(tenantgate.fit_row(v_row, v_ses.max_bytes - 3));
      end if;
      if pg_catalog.cardinality(v_masked) > 0 and pg_catalog.jsonb_array_length(v_items) > 0 then
        select pg_catalog.jsonb_agg(tenantgate.mask_row(e.r, v_masked) order by e.n) into v_items
          from pg_catalog.jsonb_array_elements(v_items) with ordinality e(r, n);
      end if;
      if v_trunc or pg_catalog.cardinality(v_masked) > 0 then
        v_bytes := pg_catalog.octet_length(v_items::text);
      end if;
    end if;
    if v_ses.kind = 'sql' and v_ses.access = 'write' and v_rows = 0 then
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
  if v_ses.kind = 'http' then
    -- The charge stands whatever upstream answers: the call was admitted and attempted. The
    -- outcome follows as an 'upstream' row (tenantgate.upstream_outcome).
    select a.seq into v_seq from tenantgate.audit_append_row(v_ses.org_id, v_ses.session_id,
      v_ses.operator_id, v_ses.customer_id, p_request_key, v_name, 'allowed',
      v_detail || '{"upstream": true}'::jsonb) a;
    insert into tenantgate.upstream_admissions (org_id, audit_seq, session_id, tool_name)
    values (v_ses.org_id, v_seq, v_ses.session_id, v_name);
    return pg_catalog.jsonb_build_object(
      'status', 'upstream', 'admission', v_seq, 'approval_id', v_approval,
      'version', v_ses.version, 'args', v_args, 'ceiling', v_ses.ceiling,
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
  if v_ses.returns = 'one' then
    if pg_catalog.jsonb_array_length(v_items) = 0 then
      v_result := '{"status": "not_found"}'::jsonb;
    else
      v_result := pg_catalog.jsonb_build_object('status', 'ok', 'result', v_items -> 0);
    end if;
  else
    -- The items are copied once into the answer (jsonb_set), not twice (nested build_object).
    v_result := pg_catalog.jsonb_set(
      pg_catalog.jsonb_build_object('status', 'ok', 'result',
        pg_catalog.jsonb_build_object('items', null, 'truncated', v_trunc)),
      '{result,items}', v_items);
  end if;
  if pg_catalog.cardinality(v_masked) > 0 and v_result ? 'result' then
    v_result := pg_catalog.jsonb_set(v_result, '{result,_masked}', pg_catalog.to_jsonb(v_masked));
  end if;
  if p_request_key is not null and v_ses.access = 'write' then
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
