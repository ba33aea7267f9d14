-- 89_audit_scale/20_seal.sql: appending without a chain lock, sealing, and the monthly partitions.
--
-- row_hash = sha256(prev_hash || utf8(audit_canonical(row))), exactly as before 0010: a chain
-- sealed here verifies with the same code, inside or outside Postgres.

set local role tenantgate_owner;

-- One link of a chain: the running hash after `seed` (the head it extends) and the message.
create function tenantgate.audit_chain_step(p_state bytea, p_seed bytea, p_message bytea)
returns bytea
language plpgsql
immutable
parallel safe
as $$  -- no SET clause: it runs once per row, and names only pg_catalog, qualified
begin
  return pg_catalog.sha256(coalesce(p_state, p_seed) operator(pg_catalog.||) p_message);
end
$$;
comment on function tenantgate.audit_chain_step(bytea, bytea, bytea) is
  'State function of audit_chain: sha256(previous hash, or the seed, || message).';

-- As a window aggregate (rows from the start to the current one) it yields every row_hash of a
-- batch in one pass: audit_chain(head_hash, utf8(canonical)) over (order by seq).
create aggregate tenantgate.audit_chain(bytea, bytea) (
  sfunc = tenantgate.audit_chain_step,
  stype = bytea
);
comment on aggregate tenantgate.audit_chain(bytea, bytea) is
  'Running hash chain: audit_chain(head_hash, message) over (order by seq) is each row''s hash.';

-- Monthly partitions of audit_log (UTC months) from p_from's month up to p_to. Sealing calls it
-- for the months ahead; a month with no partition cannot be sealed into, its rows stay pending.
create function tenantgate.audit_partitions_ensure(p_from timestamptz, p_to timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'  -- month bounds and names in UTC, whatever the caller's TimeZone
as $$
declare
  v_month timestamptz;
  v_name  text;
  v_made  integer := 0;
begin
  -- One creator at a time (two sealers could race to create the same month); held to commit.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('tenantgate.audit_partitions'));
  for v_month in
    select pg_catalog.generate_series(pg_catalog.date_trunc('month', p_from), p_to,
                                      interval '1 month')
  loop
    v_name := 'audit_log_p' || pg_catalog.to_char(v_month, 'YYYYMM');
    continue when pg_catalog.to_regclass('tenantgate.' || v_name) is not null;
    execute pg_catalog.format(
      'create table tenantgate.%I partition of tenantgate.audit_log for values from (%L) to (%L)',
      v_name, v_month, v_month + interval '1 month');
    execute pg_catalog.format('alter table tenantgate.%I enable row level security', v_name);
    execute pg_catalog.format('alter table tenantgate.%I force row level security', v_name);
    execute pg_catalog.format('create policy owner_all on tenantgate.%I for all to tenantgate_owner'
                              ' using (true) with check (true)', v_name);
    -- TRUNCATE of one partition does not fire the parent's statement trigger.
    execute pg_catalog.format('create trigger audit_log_no_truncate before truncate on'
                              ' tenantgate.%I for each statement execute function'
                              ' tenantgate.refuse_audit_change()', v_name);
    v_made := v_made + 1;
  end loop;
  return v_made;
end
$$;
comment on function tenantgate.audit_partitions_ensure(timestamptz, timestamptz) is
  'Create the missing monthly partitions of audit_log from p_from''s month to p_to; returns how '
  'many were created.';

-- Seal up to p_limit committed pending rows of one org into its chain, in entry order, under the
-- org's head row lock. With p_skip_locked a busy head answers 0 at once (a call never waits).
-- p_from_entry: read pending rows from this entry number on (NULL: all of them).
create function tenantgate.audit_seal_org(p_org_id uuid, p_limit integer, p_skip_locked boolean,
                                          p_from_entry bigint default null)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_head    record;
  v_at      timestamptz;
  v_count   bigint;
  v_seq     bigint;
  v_hash    bytea;
  v_entries bigint[];
begin
  for attempt in 1..2 loop
    if p_skip_locked then
      select h.seq, h.head_hash, h.sealed_at, h.sealed_entry into v_head
        from tenantgate.audit_heads h where h.org_id = p_org_id for update skip locked;
    else
      select h.seq, h.head_hash, h.sealed_at, h.sealed_entry into v_head
        from tenantgate.audit_heads h where h.org_id = p_org_id for update;
    end if;
    exit when found;
    if attempt = 2 or exists (select 1 from tenantgate.audit_heads h where h.org_id = p_org_id)
    then
      return 0;  -- another transaction is sealing this org; it or the next seal takes ours
    end if;
    insert into tenantgate.audit_heads (org_id, seq, head_hash)
    values (p_org_id, 0, pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'))
    on conflict (org_id) do nothing;
  end loop;

  v_at := greatest(pg_catalog.clock_timestamp(), v_head.sealed_at);
  with batch as (
    select p.*, v_head.seq + pg_catalog.row_number() over (order by p.entry_id) as seq
      from tenantgate.audit_pending p
     where p.org_id = p_org_id and p.entry_id >= coalesce(p_from_entry, 0)
     order by p.entry_id
     limit p_limit
  ), hashed as (
    select b.*, tenantgate.audit_chain(v_head.head_hash, pg_catalog.convert_to(
             tenantgate.audit_canonical(b.org_id, b.seq, b.occurred_at, b.session_id,
                                        b.operator_id, b.customer_id, b.request_id, b.tool_name,
                                        b.decision, b.detail), 'UTF8'))
             over (order by b.seq rows between unbounded preceding and current row) as row_hash
      from batch b
  ), sealed as (
    insert into tenantgate.audit_log as l
      (org_id, seq, occurred_at, session_id, operator_id, customer_id, request_id, tool_name,
       decision, detail, prev_hash, row_hash, entry_id, sealed_at)
    select h.org_id, h.seq, h.occurred_at, h.session_id, h.operator_id, h.customer_id,
           h.request_id, h.tool_name, h.decision, h.detail,
           pg_catalog.lag(h.row_hash, 1, v_head.head_hash) over (order by h.seq), h.row_hash,
           h.entry_id, v_at
      from hashed h
    returning l.seq, l.row_hash, l.entry_id  -- by alias: Citus renames the table to its shard
  )
  select pg_catalog.count(*), pg_catalog.max(s.seq),
         (pg_catalog.array_agg(s.row_hash order by s.seq desc))[1],
         pg_catalog.array_agg(s.entry_id)
    into v_count, v_seq, v_hash, v_entries
    from sealed s;
  if v_count = 0 then
    return 0;
  end if;
  update tenantgate.audit_heads h
     set seq = v_seq, head_hash = v_hash, sealed_at = v_at,
         sealed_entry = greatest(h.sealed_entry,
                                 (select pg_catalog.max(e) from pg_catalog.unnest(v_entries) e))
   where h.org_id = p_org_id;
  perform pg_catalog.set_config('tenantgate.sealing_org', p_org_id::text, true);
  delete from tenantgate.audit_pending p
   where p.org_id = p_org_id and p.entry_id = any(v_entries);
  perform pg_catalog.set_config('tenantgate.sealing_org', '', true);
  return v_count;
end
$$;
comment on function tenantgate.audit_seal_org(uuid, integer, boolean, bigint) is
  'Internal: chain up to p_limit committed pending rows of one org (entry order, from '
  'p_from_entry) under its head row lock; returns how many. p_skip_locked: answer 0 instead of '
  'waiting for the lock.';

-- What `tenantgate audit seal` runs, one org per transaction (after audit_partitions_ensure for
-- the months ahead, which on Citus must run on the coordinator, not in this org's function):
-- seal what is pending, waiting for a call that holds the head (never for long).
create function tenantgate.audit_seal(p_org_id uuid, p_limit integer default 50000)
returns table (org_id uuid, sealed bigint, head_seq bigint, still_pending bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  org_id := p_org_id;
  sealed := tenantgate.audit_seal_org(p_org_id, greatest(coalesce(p_limit, 50000), 1), false,
                                     null);
  select h.seq into head_seq from tenantgate.audit_heads h where h.org_id = p_org_id;
  select pg_catalog.count(*) into still_pending
    from tenantgate.audit_pending p where p.org_id = p_org_id;
  return next;
end
$$;
comment on function tenantgate.audit_seal(uuid, integer) is
  'Seal up to p_limit pending audit rows of one org into its chain; returns the rows sealed, the '
  'head seq and what is still pending.';

-- Orgs with rows waiting to be sealed, oldest entry first.
create function tenantgate.audit_pending_orgs()
returns table (org_id uuid, pending bigint, oldest timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select p.org_id, pg_catalog.count(*), pg_catalog.min(p.occurred_at)
    from tenantgate.audit_pending p group by p.org_id order by 3
$$;
comment on function tenantgate.audit_pending_orgs() is
  'Each org with pending (committed, not yet chained) audit rows: how many, and the oldest.';

-- The append every gate entry point makes (signature as before 0010). It never waits for the
-- chain: if the org's head is free (SKIP LOCKED) the call takes it, seals the rows waiting for
-- it, and appends its own row to the chain directly; if another call holds the head, the row
-- goes to audit_pending, committed with the call, and the next seal chains it. Returns the
-- row's entry number (what an upstream admission refers to) and its row_hash (NULL while it
-- waits to be sealed).
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
  v_entry  bigint := pg_catalog.nextval('tenantgate.audit_entry_seq');
  v_at     timestamptz := pg_catalog.clock_timestamp();
  v_detail jsonb := coalesce(p_detail, '{}'::jsonb);
  v_head   record;
  v_seq    bigint;
  v_hash   bytea;
begin
  begin
    select h.seq, h.head_hash, h.sealed_at, h.sealed_entry into v_head
      from tenantgate.audit_heads h where h.org_id = p_org_id for update skip locked;
    if not found and not exists (select 1 from tenantgate.audit_heads h
                                  where h.org_id = p_org_id) then
      insert into tenantgate.audit_heads (org_id, seq, head_hash)
      values (p_org_id, 0, pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'))
      on conflict (org_id) do nothing;
      select h.seq, h.head_hash, h.sealed_at, h.sealed_entry into v_head
        from tenantgate.audit_heads h where h.org_id = p_org_id for update skip locked;
    end if;
    if v_head.seq is not null then
      -- The head is ours until commit. Rows other calls left waiting go first (only those
      -- after the last entry sealed: an older one committed late is `audit seal`'s).
      if exists (select 1 from tenantgate.audit_pending p
                  where p.org_id = p_org_id and p.entry_id > v_head.sealed_entry) then
        perform tenantgate.audit_seal_org(p_org_id, 256, true, v_head.sealed_entry + 1);
        select h.seq, h.head_hash, h.sealed_at, h.sealed_entry into v_head
          from tenantgate.audit_heads h where h.org_id = p_org_id;
      end if;
      v_seq := v_head.seq + 1;
      v_hash := pg_catalog.sha256(v_head.head_hash operator(pg_catalog.||) pg_catalog.convert_to(
        tenantgate.audit_canonical(p_org_id, v_seq, v_at, p_session_id, p_operator_id,
                                   p_customer_id, p_request_id, p_tool_name, p_decision,
                                   v_detail), 'UTF8'));
      insert into tenantgate.audit_log
        (org_id, seq, occurred_at, session_id, operator_id, customer_id, request_id, tool_name,
         decision, detail, prev_hash, row_hash, entry_id, sealed_at)
      values (p_org_id, v_seq, v_at, p_session_id, p_operator_id, p_customer_id, p_request_id,
              p_tool_name, p_decision, v_detail, v_head.head_hash, v_hash, v_entry,
              greatest(v_at, v_head.sealed_at));
      update tenantgate.audit_heads h
         set seq = v_seq, head_hash = v_hash, sealed_at = greatest(v_at, v_head.sealed_at),
             sealed_entry = greatest(h.sealed_entry, v_entry)
       where h.org_id = p_org_id;
      return query select v_entry, v_hash;
      return;
    end if;
  exception when others then
    -- No partition for this month (nobody ran `tenantgate audit seal` for two months), or any
    -- other failure to chain now: the row is still written, pending, and the seal reports why.
    v_hash := null;
  end;
  insert into tenantgate.audit_pending
    (org_id, entry_id, occurred_at, session_id, operator_id, customer_id, request_id,
     tool_name, decision, detail)
  values (p_org_id, v_entry, v_at, p_session_id, p_operator_id, p_customer_id, p_request_id,
          p_tool_name, p_decision, v_detail);
  return query select v_entry, null::bytea;
end
$$;
comment on function tenantgate.audit_append_row(uuid, uuid, uuid, uuid, text, text, text, jsonb) is
  'Internal: write an audit row in the caller''s transaction without waiting for the chain: '
  'chained at once if the org''s head is free, else pending until the next seal; returns (entry '
  'number, row_hash or NULL while pending).';
