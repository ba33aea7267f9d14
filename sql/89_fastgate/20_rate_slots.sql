-- 89_fastgate/20_rate_slots.sql: a busy rate limit split into slots, so concurrent calls of one
-- (org, operator, tool) do not queue behind one bucket row.
--
-- rate_try's upsert held the bucket row's lock from the take to the commit of the call: the calls
-- of one operator and tool ran one at a time. A limit with a burst of 64 or more is now kept in
-- 8 slot rows (32 from a burst of 256), each with its share of the burst and of the refill rate;
-- a call takes a token from the first slot, from its own pick on, that holds one and that no
-- other call has locked (SKIP LOCKED); only when none does, it waits for the slots in slot order.
-- The slots together never admit more than the one bucket would (burst + rate x time over any
-- interval); they may admit up to one token per slot fewer when tokens are scattered below one
-- per slot. Limits with a smaller burst keep one slot and behave exactly as before.

set local role tenantgate_owner;

alter table tenantgate.rate_buckets
  add column slot smallint not null default 0;
alter table tenantgate.rate_buckets drop constraint rate_buckets_pkey;
alter table tenantgate.rate_buckets add primary key (org_id, operator_id, tool_name, slot);
-- A few slots per page: concurrent takes seldom share a page (rows written from now on).
alter table tenantgate.rate_buckets set (fillfactor = 10);
comment on column tenantgate.rate_buckets.slot is
  'Slot of a split bucket (burst >= 64: 8 slots, >= 256: 32, each its share of burst and rate); 0 otherwise.';

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
  v_slots   integer := case when p_burst >= 256 then 32 when p_burst >= 64 then 8 else 1 end;
  v_cap     double precision := p_burst::double precision / v_slots;
  v_rate    double precision := p_per_second / v_slots;
  v_pick    integer := pg_catalog.pg_backend_pid() % v_slots;
  v_pending bigint;
begin
  if v_slots = 1 then
    -- SET expressions read the row as it was, so pending gets the refusals not reported yet.
    insert into tenantgate.rate_buckets as b (org_id, operator_id, tool_name, slot, tokens,
                                              updated_at)
    values (p_org_id, p_operator_id, p_tool_name, 0, p_burst - 1, v_now)
    on conflict (org_id, operator_id, tool_name, slot) do update
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
  else
    -- Each attempt in a block of its own: a slot it locked but found empty (emptied in between)
    -- is unlocked again when the block ends in an error, so no attempt waits while holding a
    -- slot, and two calls cannot deadlock on the slots.
    begin  -- an unlocked slot holding a token, from this backend's pick on
      -- This backend's own slot first (one key lookup), then any other, from it on.
      with pick as (
          select b.slot from tenantgate.rate_buckets b
           where b.org_id = p_org_id and b.operator_id = p_operator_id
             and b.tool_name = p_tool_name and b.slot = v_pick
             and least(v_cap, b.tokens + greatest(0, extract(epoch from v_now - b.updated_at))
                                         ::double precision * v_rate) >= 1
             for update skip locked
      )
        update tenantgate.rate_buckets b
           set tokens = least(v_cap, b.tokens + greatest(0, extract(epoch from v_now - b.updated_at))
                                                ::double precision * v_rate) - 1,
               updated_at = greatest(b.updated_at, v_now),
               pending = b.refused - b.reported, reported = b.refused
          from pick
         where b.org_id = p_org_id and b.operator_id = p_operator_id
           and b.tool_name = p_tool_name and b.slot = pick.slot
        returning b.pending into v_pending;
      if found then
        return v_pending;
      end if;
      with pick as (
          select b.slot from tenantgate.rate_buckets b
           where b.org_id = p_org_id and b.operator_id = p_operator_id
             and b.tool_name = p_tool_name and b.slot < v_slots
             and least(v_cap, b.tokens + greatest(0, extract(epoch from v_now - b.updated_at))
                                         ::double precision * v_rate) >= 1
           order by (b.slot - v_pick + v_slots) % v_slots
           limit 1
             for update skip locked
      )
        update tenantgate.rate_buckets b
           set tokens = least(v_cap, b.tokens + greatest(0, extract(epoch from v_now - b.updated_at))
                                                ::double precision * v_rate) - 1,
               updated_at = greatest(b.updated_at, v_now),
               pending = b.refused - b.reported, reported = b.refused
          from pick
         where b.org_id = p_org_id and b.operator_id = p_operator_id
           and b.tool_name = p_tool_name and b.slot = pick.slot
        returning b.pending into v_pending;
      if found then
        return v_pending;
      end if;
      raise exception using errcode = 'TGS01', message = 'tenantgate: no unlocked slot';
    exception
      when sqlstate 'TGS01' then
        null;
    end;
    -- The first call of this limit finds no slot: create them full (slots added later, when
    -- the burst grows, start empty). Only then: an insert meeting a slot another call has
    -- updated would wait for that call.
    if not exists (select 1 from tenantgate.rate_buckets b
                    where b.org_id = p_org_id and b.operator_id = p_operator_id
                      and b.tool_name = p_tool_name and b.slot = v_slots - 1) then
      perform 1 from tenantgate.rate_buckets b
       where b.org_id = p_org_id and b.operator_id = p_operator_id and b.tool_name = p_tool_name;
      insert into tenantgate.rate_buckets (org_id, operator_id, tool_name, slot, tokens, updated_at)
      select p_org_id, p_operator_id, p_tool_name, g, case when found then 0 else v_cap end, v_now
        from pg_catalog.generate_series(0, v_slots - 1) g
      on conflict (org_id, operator_id, tool_name, slot) do nothing;
    end if;
    begin  -- any slot holding a token, waiting for locked ones in slot order (every waiter in
           -- the same order: none waits for another that waits for it)
      with pick as (
          select b.slot from tenantgate.rate_buckets b
           where b.org_id = p_org_id and b.operator_id = p_operator_id
             and b.tool_name = p_tool_name and b.slot < v_slots
             and least(v_cap, b.tokens + greatest(0, extract(epoch from v_now - b.updated_at))
                                         ::double precision * v_rate) >= 1
           order by b.slot
           limit 1
             for update
      )
        update tenantgate.rate_buckets b
           set tokens = least(v_cap, b.tokens + greatest(0, extract(epoch from v_now - b.updated_at))
                                                ::double precision * v_rate) - 1,
               updated_at = greatest(b.updated_at, v_now),
               pending = b.refused - b.reported, reported = b.refused
          from pick
         where b.org_id = p_org_id and b.operator_id = p_operator_id
           and b.tool_name = p_tool_name and b.slot = pick.slot
        returning b.pending into v_pending;
      if found then
        return v_pending;
      end if;
      raise exception using errcode = 'TGS01', message = 'tenantgate: no slot holds a token';
    exception
      when sqlstate 'TGS01' then
        null;
    end;
  end if;
  update tenantgate.rate_buckets b set refused = b.refused + 1
   where b.org_id = p_org_id and b.operator_id = p_operator_id and b.tool_name = p_tool_name
     and b.slot = 0;
  return -1;
end
$$;
comment on function tenantgate.rate_try(uuid, uuid, text, integer, double precision) is
  'Internal: take a token (from an unlocked slot of a split bucket); refusals counted so far '
  '(>= 0), or -1 when rate limited.';
