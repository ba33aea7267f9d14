-- 40_functions/40_credits.sql: race-safe, idempotent credit spend, and grants.
--
-- spend_credits claims the (org, request id) first with insert ... on conflict do nothing, then
-- takes the credits with one conditional update (balance >= amount), at READ COMMITTED. Measured
-- here: 64 concurrent spenders never overspend, and concurrent duplicates of one request id are
-- charged once (the second waits on the unique key, then finds the first's answer).
-- It runs in the caller's transaction: if the tool call fails and rolls back, so does the charge.

set local role tenantgate_owner;

-- The spend itself, for an org and session already verified by the caller (a definer function that
-- called tenantgate.verified_context()). Not granted to anyone.
create function tenantgate.spend_credits_for(
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
comment on function tenantgate.spend_credits_for(uuid, uuid, text, bigint, text) is
  'Internal: the credit spend for an org and session the caller has verified.';

create function tenantgate.spend_credits(p_request_id text, p_amount bigint, p_tool_name text)
returns table (charged boolean, replayed boolean, balance bigint)
language plpgsql  -- not sql: Citus cannot plan a SQL function's parameters on a distributed table
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
  select s.charged, s.replayed, s.balance
  from tenantgate.verified_context() c,
       lateral tenantgate.spend_credits_for(c.org_id, c.session_id, p_request_id, p_amount,
                                            p_tool_name) s;
end
$$;
comment on function tenantgate.spend_credits(text, bigint, text) is
  'Charge the verified session''s org once per request id; never below zero; charged=false when '
  'the balance is too low. Runs in the caller''s transaction.';

create function tenantgate.grant_credits(p_org_id uuid, p_amount bigint, p_request_id text)
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
comment on function tenantgate.grant_credits(uuid, bigint, text) is
  'Add credits to an org, once per request id; returns the balance.';
