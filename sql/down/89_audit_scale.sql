-- down/89_audit_scale.sql: back to one unpartitioned audit_log and the head-lock append of 0008.
--
-- Pending rows are sealed first, so no row is lost; the rows keep their seq and hashes. A chain
-- whose oldest months were retired starts after its cut: the 0008 verifier, which starts at the
-- genesis, will report it broken at its first row (the cuts are dropped here: keep them first).

set local role tenantgate_owner;

do $seal$
declare
  v_org uuid;
begin
  loop
    select p.org_id into v_org from tenantgate.audit_pending p limit 1;
    exit when not found;
    if tenantgate.audit_seal_org(v_org, 50000, false, null) = 0 then
      raise exception 'tenantgate: cannot seal the pending audit rows of org %', v_org
        using hint = 'Run `tenantgate audit seal` and read its error, then downgrade again.';
    end if;
  end loop;
end
$seal$;

alter table tenantgate.audit_log rename to audit_log_partitioned;
alter index tenantgate.audit_log_pkey rename to audit_log_partitioned_pkey;
alter index tenantgate.audit_log_time_idx rename to audit_log_partitioned_time_idx;

create table tenantgate.audit_log (
  org_id       uuid        not null,
  seq          bigint      not null check (seq > 0),
  occurred_at  timestamptz not null,
  session_id   uuid,
  operator_id  uuid,
  customer_id  uuid,
  request_id   text,
  tool_name    text,
  decision     text        not null,
  detail       jsonb       not null default '{}',
  prev_hash    bytea       not null check (pg_catalog.length(prev_hash) = 32),
  row_hash     bytea       not null check (pg_catalog.length(row_hash) = 32),
  primary key (org_id, seq),
  constraint audit_log_decision_check check (decision in (
    'allowed', 'denied', 'error', 'approval_required', 'rate_limited', 'no_credit',
    'approved', 'approval_denied', 'replayed', 'upstream'))
);
create index audit_log_time_idx on tenantgate.audit_log (org_id, occurred_at);
comment on table tenantgate.audit_log is
  'Append-only, per-org hash chain of every tool call and denial. UPDATE, DELETE and TRUNCATE are '
  'refused by triggers, even for the owner.';
comment on column tenantgate.audit_log.detail is
  'What happened, never a credential: tool argument hash, row and byte counts, reason codes.';

insert into tenantgate.audit_log
  (org_id, seq, occurred_at, session_id, operator_id, customer_id, request_id, tool_name,
   decision, detail, prev_hash, row_hash)
select p.org_id, p.seq, p.occurred_at, p.session_id, p.operator_id, p.customer_id, p.request_id,
       p.tool_name, p.decision, p.detail, p.prev_hash, p.row_hash
  from tenantgate.audit_log_partitioned p;
drop table tenantgate.audit_log_partitioned;

alter table tenantgate.audit_log enable row level security;
alter table tenantgate.audit_log force row level security;
create policy owner_all on tenantgate.audit_log for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.audit_log for select to tenantgate_admin using (true);
create trigger audit_log_append_only
  before update or delete on tenantgate.audit_log
  for each row execute function tenantgate.refuse_audit_change();
create trigger audit_log_no_truncate
  before truncate on tenantgate.audit_log
  for each statement execute function tenantgate.refuse_audit_change();
grant select on tenantgate.audit_log to tenantgate_admin;

drop table tenantgate.audit_cuts;
drop table tenantgate.audit_pending;
drop sequence tenantgate.audit_entry_seq;
drop function tenantgate.audit_pending_release();
drop function tenantgate.audit_retire(timestamptz);
drop function tenantgate.audit_orgs();
drop function tenantgate.audit_verify_from(uuid, bigint, bytea);
drop function tenantgate.audit_pending_orgs();
drop function tenantgate.audit_seal(uuid, integer);
drop function tenantgate.audit_seal_org(uuid, integer, boolean, bigint);
drop function tenantgate.audit_partitions_ensure(timestamptz, timestamptz);
drop aggregate tenantgate.audit_chain(bytea, bytea);
drop function tenantgate.audit_chain_step(bytea, bytea, bytea);
alter table tenantgate.audit_heads drop column sealed_at, drop column sealed_entry;

-- The append of 0006 (sql/88_gate/40_call.sql): lock the head, hash, move it, insert.
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
  loop
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

-- The row-by-row verifier of 0002 (sql/40_functions/50_audit.sql).
create or replace function tenantgate.audit_verify(p_org_id uuid default null)
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
