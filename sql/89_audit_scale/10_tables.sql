-- 89_audit_scale/10_tables.sql: the audit log at scale -- no call waits for its org's chain.
--
-- Before 0010 every append locked the org's head row until commit, so the calls of one org ran
-- one at a time. Now a call takes the head only if it is free (SKIP LOCKED): then it chains its
-- row at once, as before. If another call holds the head, the row goes to
-- tenantgate.audit_pending instead -- in the call's own transaction, so no call commits without
-- its audit row -- and is sealed into the chain, in entry order, by the next call that takes the
-- head or by `tenantgate audit seal` (tenantgate.audit_seal, every second). Until then it is
-- recorded but not yet covered by the chain: the tamper-evidence window of docs/design.md.
--
-- audit_log is partitioned by month of sealed_at, the time its row joined the chain. sealed_at
-- never decreases along one org's chain (audit_heads.sealed_at), so each partition holds one
-- seq range per org and dropping the oldest partitions (tenantgate.audit_retire) leaves each
-- chain's remainder whole, verifiable from the cut recorded in tenantgate.audit_cuts.

set local role tenantgate_owner;

-- Every append's number, in the order appends happened; it names a row before its seq exists.
create sequence tenantgate.audit_entry_seq as bigint;
comment on sequence tenantgate.audit_entry_seq is
  'Entry numbers of audit rows (audit_pending.entry_id, then audit_log.entry_id).';

create table tenantgate.audit_pending (
  org_id       uuid        not null,
  entry_id     bigint      not null default pg_catalog.nextval('tenantgate.audit_entry_seq'),
  occurred_at  timestamptz not null,
  session_id   uuid,
  operator_id  uuid,
  customer_id  uuid,
  request_id   text,
  tool_name    text,
  decision     text        not null check (decision in (
    'allowed', 'denied', 'error', 'approval_required', 'rate_limited', 'no_credit',
    'approved', 'approval_denied', 'replayed', 'upstream')),
  detail       jsonb       not null default '{}',
  primary key (org_id, entry_id)
);
-- Every row is deleted once sealed: vacuum it as soon as a few thousand are dead.
alter table tenantgate.audit_pending set (autovacuum_vacuum_threshold = 2000,
                                         autovacuum_vacuum_scale_factor = 0,
                                         autovacuum_vacuum_cost_delay = 0);
comment on table tenantgate.audit_pending is
  'Audit rows committed but not yet chained. A row leaves only by being sealed into audit_log '
  '(a trigger refuses any other DELETE, and every UPDATE or TRUNCATE).';

-- Rows as they were before 0010, moved into the partitioned table below (30_move_rows.sql).
alter table tenantgate.audit_log rename to audit_log_unpartitioned;
alter index tenantgate.audit_log_pkey rename to audit_log_unpartitioned_pkey;
alter index tenantgate.audit_log_time_idx rename to audit_log_unpartitioned_time_idx;

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
  entry_id     bigint,
  sealed_at    timestamptz not null,
  -- The partition key must be part of the key; one seq per org is what sealing under the head
  -- row lock guarantees, and audit_verify reports a seq found twice.
  primary key (org_id, seq, sealed_at),
  constraint audit_log_decision_check check (decision in (
    'allowed', 'denied', 'error', 'approval_required', 'rate_limited', 'no_credit',
    'approved', 'approval_denied', 'replayed', 'upstream'))
) partition by range (sealed_at);
create index audit_log_time_idx on tenantgate.audit_log (org_id, occurred_at);
comment on table tenantgate.audit_log is
  'Append-only, per-org hash chain of every tool call and denial, partitioned by month of '
  'sealed_at. UPDATE, DELETE and TRUNCATE are refused by triggers, even for the owner; old months '
  'leave only whole, through tenantgate.audit_retire.';
comment on column tenantgate.audit_log.detail is
  'What happened, never a credential: tool argument hash, row and byte counts, reason codes.';
comment on column tenantgate.audit_log.entry_id is
  'The entry number the append returned (NULL for rows written before 0010); not hashed.';
comment on column tenantgate.audit_log.sealed_at is
  'When the row joined the chain; never decreases along one org''s chain; the partition key; '
  'not hashed.';

alter table tenantgate.audit_heads
  add column sealed_at timestamptz not null default '-infinity',
  add column sealed_entry bigint not null default 0;
comment on column tenantgate.audit_heads.sealed_at is
  'sealed_at of the chain''s last row: the next seal never stamps an earlier time.';
comment on column tenantgate.audit_heads.sealed_entry is
  'Highest entry number sealed so far: a call''s own seal reads pending rows from there (or from '
  'its own row), not past every row sealed before; `audit seal` reads them all.';

create table tenantgate.audit_cuts (
  org_id      uuid        not null,
  seq         bigint      not null check (seq > 0),
  row_hash    bytea       not null check (pg_catalog.length(row_hash) = 32),
  retired_at  timestamptz not null default pg_catalog.now(),
  partition   text        not null,
  primary key (org_id, seq)
);
comment on table tenantgate.audit_cuts is
  'Where each chain was cut by audit_retire: its last retired row (seq, row_hash). Verification '
  'starts there. Keep a copy outside the database: it is the anchor of what remains.';

do $rls$
declare
  t text;
begin
  foreach t in array array['audit_pending', 'audit_log', 'audit_cuts'] loop
    execute pg_catalog.format('alter table tenantgate.%I enable row level security', t);
    execute pg_catalog.format('alter table tenantgate.%I force row level security', t);
    execute pg_catalog.format(
      'create policy owner_all on tenantgate.%I for all to tenantgate_owner using (true) with check (true)', t);
    execute pg_catalog.format(
      'create policy admin_read on tenantgate.%I for select to tenantgate_admin using (true)', t);
  end loop;
end
$rls$;

-- A pending row may leave only through audit_seal_org, which marks its transaction for the org
-- it has just chained. The trigger reads no other table (on Citus it runs on the shard).
create function tenantgate.audit_pending_release()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if pg_catalog.current_setting('tenantgate.sealing_org', true) is distinct from old.org_id::text
  then
    raise exception using errcode = '42501',
      message = 'tenantgate: a pending audit row leaves only by being sealed into the chain',
      hint = 'Seal it: tenantgate audit seal.';
  end if;
  return old;
end
$$;
comment on function tenantgate.audit_pending_release() is
  'Trigger: refuse deleting a pending audit row outside audit_seal_org.';

create trigger audit_pending_sealed_only
  before delete on tenantgate.audit_pending
  for each row execute function tenantgate.audit_pending_release();
create trigger audit_pending_no_update
  before update on tenantgate.audit_pending
  for each row execute function tenantgate.refuse_audit_change();
create trigger audit_pending_no_truncate
  before truncate on tenantgate.audit_pending
  for each statement execute function tenantgate.refuse_audit_change();

create trigger audit_log_append_only
  before update or delete on tenantgate.audit_log
  for each row execute function tenantgate.refuse_audit_change();
create trigger audit_log_no_truncate
  before truncate on tenantgate.audit_log
  for each statement execute function tenantgate.refuse_audit_change();

create trigger audit_cuts_append_only
  before update or delete on tenantgate.audit_cuts
  for each row execute function tenantgate.refuse_audit_change();
create trigger audit_cuts_no_truncate
  before truncate on tenantgate.audit_cuts
  for each statement execute function tenantgate.refuse_audit_change();
