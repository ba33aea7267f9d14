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

-- audit_append_row and audit_verify get their 0008 bodies back from the files that define them
-- (migrations/versions/0010_audit_scale.py, migrations.sqlfile.rerun_functions).
