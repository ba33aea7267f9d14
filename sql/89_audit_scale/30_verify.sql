-- 89_audit_scale/30_verify.sql: verifying a chain in one pass, from any anchored head, and
-- retiring old months.
--
-- A verification starts after an anchor (seq, hash): the genesis (0, 32 zero bytes), the cut
-- that audit_retire recorded, or a head the operator kept outside the database. It reads only
-- the rows after the anchor (the primary key's range), checks each row against its own hash and
-- its predecessor's, and the last one against audit_heads. Pending rows are not in the chain
-- yet; they are counted, not checked.

set local role tenantgate_owner;

create function tenantgate.audit_verify_from(p_org_id uuid, p_after_seq bigint default null,
                                             p_after_hash bytea default null)
returns table (org_id uuid, rows_checked bigint, first_broken_seq bigint, problem text,
               last_seq bigint, last_hash bytea, pending bigint)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_from   bigint := p_after_seq;
  v_anchor bytea := p_after_hash;
  v_hash   bytea;
  v        record;
  v_head   record;
begin
  org_id := p_org_id;
  if v_from is null then  -- from the last cut, or from the genesis
    select c.seq, c.row_hash into v_from, v_anchor
      from tenantgate.audit_cuts c where c.org_id = p_org_id order by c.seq desc limit 1;
    if not found then
      v_from := 0;
      v_anchor := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
    end if;
  end if;
  if v_anchor is null or pg_catalog.length(v_anchor) <> 32 or v_from < 0 then
    raise exception using errcode = '22023',
      message = 'tenantgate: an anchor is a seq >= 0 and a 32-byte hash',
      hint = 'Use a head printed by `tenantgate audit heads` or `tenantgate audit retire`.';
  end if;
  select pg_catalog.count(*) into pending
    from tenantgate.audit_pending p where p.org_id = p_org_id;

  -- The anchored row itself, unless it was retired: it must be the row that was anchored.
  if v_from > 0 then
    select a.row_hash into v_hash
      from tenantgate.audit_log a where a.org_id = p_org_id and a.seq = v_from;
    if found and v_hash <> v_anchor then
      rows_checked := 0;
      first_broken_seq := v_from;
      problem := 'row differs from the anchored head: the chain was rewritten';
      return next;
      return;
    end if;
  end if;

  -- Every row after the anchor, once: its place, its link, its content.
  select pg_catalog.count(*) as n,
         pg_catalog.min(r.expected) filter (where r.seq <> r.expected) as gap_at,
         pg_catalog.min(r.seq) filter (where r.seq <> r.expected) as gap_found,
         pg_catalog.min(r.expected) filter (where r.prev_hash <> r.expected_prev) as link_at,
         pg_catalog.min(r.expected) filter (where r.row_hash <> r.computed) as edit_at
    into v
    from (select a.seq, a.prev_hash, a.row_hash,
                 v_from + pg_catalog.row_number() over w as expected,
                 pg_catalog.lag(a.row_hash, 1, v_anchor) over w as expected_prev,
                 pg_catalog.sha256(a.prev_hash || pg_catalog.convert_to(
                   tenantgate.audit_canonical(a.org_id, a.seq, a.occurred_at, a.session_id,
                                              a.operator_id, a.customer_id, a.request_id,
                                              a.tool_name, a.decision, a.detail), 'UTF8'))
                   as computed
            from tenantgate.audit_log a
           where a.org_id = p_org_id and a.seq > v_from
          window w as (order by a.seq)) r;

  first_broken_seq := least(v.gap_at, v.link_at, v.edit_at);
  if first_broken_seq is not null then
    rows_checked := first_broken_seq - v_from;
    problem := case
      when first_broken_seq = v.gap_at and v.gap_found > v.gap_at then
        pg_catalog.format('row %s is missing (next row found is %s)', v.gap_at, v.gap_found)
      when first_broken_seq = v.gap_at then
        pg_catalog.format('row %s appears more than once', v.gap_found)
      when first_broken_seq = v.link_at and v.link_at = v_from + 1 and v_from > 0 then
        'prev_hash does not match the anchored head (rows removed or rewritten at the anchor)'
      when first_broken_seq = v.link_at then
        'prev_hash does not match the previous row''s hash'
      else 'row content does not match its hash (the row was edited)'
    end;
    return next;
    return;
  end if;

  rows_checked := v.n;
  last_seq := v_from;
  last_hash := v_anchor;
  if v.n > 0 then
    select a.seq, a.row_hash into last_seq, last_hash
      from tenantgate.audit_log a where a.org_id = p_org_id order by a.seq desc limit 1;
  end if;
  select h.seq, h.head_hash into v_head from tenantgate.audit_heads h where h.org_id = p_org_id;
  if not found or v_head.seq <> last_seq or v_head.head_hash <> last_hash then
    first_broken_seq := last_seq + 1;
    problem := 'chain head does not match the last row (rows removed at the end, or head rewritten)';
  end if;
  return next;
end
$$;
comment on function tenantgate.audit_verify_from(uuid, bigint, bytea) is
  'Verify one org''s chain after an anchor (seq, hash) -- by default its last cut, or the '
  'genesis -- reading only the rows after it. first_broken_seq is NULL when intact; last_seq and '
  'last_hash are the next anchor; pending counts rows not chained yet.';

-- Every org with a chain, a pending row or a row in the log (a deleted head included), found by
-- skipping along the primary key rather than reading every row.
create function tenantgate.audit_orgs()
returns table (org_id uuid)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  with recursive logged(org_id) as (
    (select a.org_id from tenantgate.audit_log a order by a.org_id limit 1)
    union all
    select (select a.org_id from tenantgate.audit_log a
             where a.org_id > l.org_id order by a.org_id limit 1)
      from logged l where l.org_id is not null
  )
  select o.org_id from (
    select l.org_id from logged l where l.org_id is not null
    union select h.org_id from tenantgate.audit_heads h
    union select p.org_id from tenantgate.audit_pending p
  ) o order by 1
$$;
comment on function tenantgate.audit_orgs() is
  'Every org with an audit chain, head or pending row.';

-- Walk every chain (or one org's) from its last cut; the signature of before 0010.
create or replace function tenantgate.audit_verify(p_org_id uuid default null)
returns table (org_id uuid, rows_checked bigint, first_broken_seq bigint, problem text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_org_id is not null then
    -- One org: its own rows only (on Citus, one shard: the whole-log walk of audit_orgs() is a
    -- recursive query Citus cannot route).
    return query
      select v.org_id, v.rows_checked, v.first_broken_seq, v.problem
        from tenantgate.audit_verify_from(p_org_id) v;
    return;
  end if;
  return query
    select v.org_id, v.rows_checked, v.first_broken_seq, v.problem
      from tenantgate.audit_orgs() o
     cross join lateral tenantgate.audit_verify_from(o.org_id) v;
end
$$;
comment on function tenantgate.audit_verify(uuid) is
  'Recompute every chain (or one org''s) from its last cut; first_broken_seq is NULL when intact.';

-- Drop the monthly partitions wholly before p_before (never the current month), oldest first,
-- recording for each org the last row retired: the anchor its remainder verifies from.
create function tenantgate.audit_retire(p_before timestamptz)
returns table (org_id uuid, seq bigint, head_hash bytea, partition text, rows_retired bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
as $$
declare
  v_part record;
begin
  if p_before > pg_catalog.date_trunc('month', pg_catalog.now()) then
    raise exception using errcode = '22023',
      message = pg_catalog.format('tenantgate: cannot retire audit rows sealed after %s',
                                  pg_catalog.date_trunc('month', pg_catalog.now())),
      hint = 'Only whole months before the current one can be retired.';
  end if;
  for v_part in
    select b.name, b.lower_at, b.upper_at from (
      select c.relname::text as name,
             pg_catalog.substring(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                  'FROM \(''([^'']+)''\)')::timestamptz as lower_at,
             pg_catalog.substring(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                  'TO \(''([^'']+)''\)')::timestamptz as upper_at
        from pg_catalog.pg_inherits i
        join pg_catalog.pg_class c on c.oid = i.inhrelid
       where i.inhparent = 'tenantgate.audit_log'::pg_catalog.regclass) b
     where b.upper_at <= p_before
     order by b.upper_at
  loop
    return query
      with last_rows as (
        select distinct on (a.org_id) a.org_id, a.seq, a.row_hash,
               pg_catalog.count(*) over (partition by a.org_id) as n
          from tenantgate.audit_log a
         where a.sealed_at >= v_part.lower_at and a.sealed_at < v_part.upper_at
         order by a.org_id, a.seq desc
      ), cut as (
        insert into tenantgate.audit_cuts (org_id, seq, row_hash, partition)
        select l.org_id, l.seq, l.row_hash, v_part.name from last_rows l
        on conflict on constraint audit_cuts_pkey do nothing
      )
      select l.org_id, l.seq, l.row_hash, v_part.name, l.n from last_rows l;
    execute pg_catalog.format('drop table tenantgate.%I', v_part.name);
  end loop;
end
$$;
comment on function tenantgate.audit_retire(timestamptz) is
  'Retire (drop) the monthly audit partitions wholly before p_before, oldest first; returns and '
  'records in audit_cuts each org''s last retired row, the anchor its remainder verifies from.';
