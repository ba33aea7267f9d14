-- 89_fastgate/10_credit_slots.sql: an org's credits held in 32 slot rows, so calls of one org
-- do not queue behind one balance row.
--
-- Before this file every charge updated the org's single credit_accounts row and held its lock
-- until commit: 32 concurrent callers of one org ran one at a time through it. Now:
--   credit_slots      (org_id, slot 0..31, balance >= 0). The org's balance is the exact sum.
--   credit_accounts   a view of that sum, one row per org, as before (readers keep working; an
--                     update or insert through it sets the total, spread over the slots).
--   credit_take       a charge takes the cost from ONE slot holding enough that no other call has
--                     locked (FOR UPDATE SKIP LOCKED, starting at the caller's own pick); when
--                     every such slot is locked it waits for one, in slot order. Only when no
--                     slot alone holds enough does it lock all the org's slots in slot order,
--                     add them up, refuse if the sum is short, or charge and spread the rest
--                     evenly again. Each slot's conditional update keeps it >= 0 (and the
--                     check constraint backs it up), so the sum never goes below zero: no
--                     overspend, and no refusal while the org's exact total covers the cost.
-- Every statement filters on org_id, the table is keyed (org_id, slot): ready for Citus.

set local role tenantgate_owner;

create table tenantgate.credit_slots (
  org_id      uuid        not null references tenantgate.orgs (org_id),
  slot        smallint    not null,  -- 0..31, written by credit_spread only
  balance     bigint      not null default 0 check (balance >= 0),
  updated_at  timestamptz not null default pg_catalog.now(),
  primary key (org_id, slot)
) with (fillfactor = 10);  -- a few slots per page: concurrent charges seldom share a page
comment on table tenantgate.credit_slots is
  'An org''s credits in up to 32 slots; the balance is their exact sum (view credit_accounts).';
alter table tenantgate.credit_slots enable row level security;
alter table tenantgate.credit_slots force row level security;
create policy owner_all on tenantgate.credit_slots for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.credit_slots for select to tenantgate_admin using (true);

-- The balances so far, spread evenly over each org's 32 slots.
insert into tenantgate.credit_slots (org_id, slot, balance, updated_at)
select a.org_id, g.slot, a.balance / 32 + case when g.slot < a.balance % 32 then 1 else 0 end,
       a.updated_at
  from tenantgate.credit_accounts a
 cross join pg_catalog.generate_series(0, 31) as g(slot);
drop table tenantgate.credit_accounts;

create view tenantgate.credit_accounts with (security_invoker = true) as
select s.org_id, pg_catalog.sum(s.balance)::bigint as balance,
       pg_catalog.max(s.updated_at) as updated_at
  from tenantgate.credit_slots s
 group by s.org_id;
comment on view tenantgate.credit_accounts is
  'One credit balance per org: the exact sum of its credit_slots. Updating balance sets the total.';

-- Lock every slot of the org (slot order: two spreaders never deadlock), and set the total to
-- p_total spread evenly over all 32 slots. Returns the total before. Internal.
create function tenantgate.credit_spread(p_org_id uuid, p_delta bigint, p_set_total bigint)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_before bigint;
  v_total  bigint;
begin
  perform 1 from tenantgate.credit_slots s where s.org_id = p_org_id order by s.slot for update;
  select coalesce(pg_catalog.sum(s.balance), 0) into v_before
    from tenantgate.credit_slots s where s.org_id = p_org_id;
  v_total := coalesce(p_set_total, v_before + p_delta);
  if v_total < 0 then
    return v_before;  -- the caller refuses; nothing changed
  end if;
  insert into tenantgate.credit_slots (org_id, slot, balance)
  select p_org_id, g, 0 from pg_catalog.generate_series(0, 31) g
  on conflict (org_id, slot) do nothing;
  update tenantgate.credit_slots s
     set balance = v_total / 32 + case when s.slot < v_total % 32 then 1 else 0 end,
         updated_at = pg_catalog.now()
   where s.org_id = p_org_id;
  return v_before;
end
$$;
comment on function tenantgate.credit_spread(uuid, bigint, bigint) is
  'Internal: lock all of an org''s credit slots, then set their total (before + delta, or '
  'p_set_total) spread evenly; nothing changes when it would go below zero. Returns the total before.';

-- Take p_amount from the org: the org's total after the charge, or NULL when it is short.
create function tenantgate.credit_take(p_org_id uuid, p_amount bigint, p_pick integer)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_after  bigint;
  v_before bigint;
  v_ready  bigint;
  v_pick   integer := pg_catalog.abs(coalesce(p_pick, 0) % 32);
begin
  -- One unlocked slot that holds enough, from the caller's pick on. A slot another call has
  -- locked is skipped, not waited for. The sum is the statement's snapshot of the other slots.
  -- In a block of its own: a slot it locked but could not charge (its balance fell below the
  -- amount in between) is unlocked again by leaving the block with an error, so the wait below
  -- only ever waits in slot order, holding no slot: two waiters cannot deadlock.
  begin
    -- The caller's own slot first (one key lookup), then any other, from it on.
    with pick as (
      select s.slot from tenantgate.credit_slots s
       where s.org_id = p_org_id and s.slot = v_pick and s.balance >= p_amount
         for update skip locked
    ), took as (
      update tenantgate.credit_slots s
         set balance = s.balance - p_amount, updated_at = pg_catalog.now()
        from pick
       where s.org_id = p_org_id and s.slot = pick.slot and s.balance >= p_amount
      returning s.slot
    )
    select (select pg_catalog.sum(a.balance) from tenantgate.credit_slots a
             where a.org_id = p_org_id) - p_amount
      into v_after
      from took;
    if v_after is not null then
      return v_after;
    end if;
    with pick as (
      select s.slot from tenantgate.credit_slots s
       where s.org_id = p_org_id and s.balance >= p_amount
       order by (s.slot - v_pick + 32) % 32
       limit 1
         for update skip locked
    ), took as (
      update tenantgate.credit_slots s
         set balance = s.balance - p_amount, updated_at = pg_catalog.now()
        from pick
       where s.org_id = p_org_id and s.slot = pick.slot and s.balance >= p_amount
      returning s.slot
    )
    select (select pg_catalog.sum(a.balance) from tenantgate.credit_slots a
             where a.org_id = p_org_id) - p_amount
      into v_after
      from took;
    if v_after is not null then
      return v_after;
    end if;
    raise exception using errcode = 'TGS01', message = 'tenantgate: no unlocked slot holds enough';
  exception
    when sqlstate 'TGS01' then
      null;  -- whatever the attempt locked is unlocked; wait below
  end;
  -- Every slot that holds enough is locked by another call. While at least 8 do, wait for the
  -- first of them, in slot order (all waiters wait in the same order, so none waits for another
  -- that waits for it), in a block of its own for the same reason as above. Fewer: the credits
  -- have gathered in a few slots, where calls would queue; spread them again below.
  select pg_catalog.count(*) into v_ready
    from tenantgate.credit_slots s where s.org_id = p_org_id and s.balance >= p_amount;
  if v_ready >= 8 then
  begin
    with pick as (
      select s.slot from tenantgate.credit_slots s
       where s.org_id = p_org_id and s.balance >= p_amount
       order by s.slot
       limit 1
         for update
    ), took as (
      update tenantgate.credit_slots s
         set balance = s.balance - p_amount, updated_at = pg_catalog.now()
        from pick
       where s.org_id = p_org_id and s.slot = pick.slot and s.balance >= p_amount
      returning s.slot
    )
    select (select pg_catalog.sum(a.balance) from tenantgate.credit_slots a
             where a.org_id = p_org_id) - p_amount
      into v_after
      from took;
    if v_after is not null then
      return v_after;
    end if;
    raise exception using errcode = 'TGS01', message = 'tenantgate: no slot holds enough';
  exception
    when sqlstate 'TGS01' then
      null;
  end;
  end if;
  -- No slot alone holds enough (or few do): wait for every slot, add them up, charge or refuse
  -- exactly, and spread what is left evenly again.
  v_before := tenantgate.credit_spread(p_org_id, -p_amount, null);
  if v_before < p_amount then
    return null;
  end if;
  return v_before - p_amount;
end
$$;
comment on function tenantgate.credit_take(uuid, bigint, integer) is
  'Internal: charge an org p_amount from one unlocked slot, or from all slots when none alone '
  'holds it; the total after, or NULL when the org''s exact total is short.';

-- Writes through the view set the org's total (admins, the demo, tests that set a balance).
create function tenantgate.credit_accounts_write()
returns trigger
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'DELETE' then
    delete from tenantgate.credit_slots s where s.org_id = old.org_id;
    return old;
  end if;
  if new.balance is null or new.balance < 0 then
    raise exception using errcode = '23514',
      message = pg_catalog.format('tenantgate: a credit balance must be >= 0, got %s', new.balance);
  end if;
  perform tenantgate.credit_spread(new.org_id, 0, new.balance);
  return new;
end
$$;
comment on function tenantgate.credit_accounts_write() is
  'Trigger: an insert or update of credit_accounts sets the org''s total over its slots.';
create trigger credit_accounts_write instead of insert or update or delete
  on tenantgate.credit_accounts
  for each row execute function tenantgate.credit_accounts_write();

-- The spend, restated on the slots (same contract as sql/40_functions/40_credits.sql).
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

  v_balance := tenantgate.credit_take(p_org_id, p_amount, pg_catalog.hashtext(p_request_id));
  if v_balance is not null then
    update tenantgate.credit_ledger l
       set outcome = 'charged', balance_after = v_balance
     where l.org_id = p_org_id and l.request_id = p_request_id;
    return query select true, false, v_balance;
  else
    select coalesce(pg_catalog.sum(s.balance), 0) into v_balance
      from tenantgate.credit_slots s where s.org_id = p_org_id;
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
    v_balance := tenantgate.credit_spread(p_org_id, p_amount, null) + p_amount;
    update tenantgate.credit_ledger l set balance_after = v_balance
     where l.org_id = p_org_id and l.request_id = p_request_id;
  else
    select coalesce(pg_catalog.sum(s.balance), 0) into v_balance
      from tenantgate.credit_slots s where s.org_id = p_org_id;
  end if;
  return v_balance;
end
$$;

revoke execute on function tenantgate.credit_spread(uuid, bigint, bigint),
  tenantgate.credit_take(uuid, bigint, integer), tenantgate.credit_accounts_write()
  from public;
grant select on tenantgate.credit_slots, tenantgate.credit_accounts to tenantgate_admin;
