-- 30_tables/50_audit.sql: the append-only, hash-chained audit log.
--
-- One chain per org: each row carries the previous row's hash and its own, over a canonical
-- encoding (tenantgate.audit_canonical). audit_heads holds each chain's last (seq, hash); appends
-- lock that row, so concurrent writers extend one unbroken chain. Export the heads somewhere
-- outside the database: whoever can rewrite a head and re-hash every row can forge a chain.

set local role tenantgate_owner;

create table tenantgate.audit_log (
  org_id       uuid        not null,
  seq          bigint      not null check (seq > 0),
  occurred_at  timestamptz not null,
  session_id   uuid,
  operator_id  uuid,
  customer_id  uuid,
  request_id   text,
  tool_name    text,
  decision     text        not null check (decision in ('allowed', 'denied', 'error',
                                                        'approval_required', 'rate_limited',
                                                        'no_credit')),
  detail       jsonb       not null default '{}',
  prev_hash    bytea       not null check (pg_catalog.length(prev_hash) = 32),
  row_hash     bytea       not null check (pg_catalog.length(row_hash) = 32),
  primary key (org_id, seq)
);
create index audit_log_time_idx on tenantgate.audit_log (org_id, occurred_at);
comment on table tenantgate.audit_log is
  'Append-only, per-org hash chain of every tool call and denial. UPDATE, DELETE and TRUNCATE are '
  'refused by triggers, even for the owner.';
comment on column tenantgate.audit_log.detail is
  'What happened, never a credential: tool argument hash, row and byte counts, reason codes.';

create table tenantgate.audit_heads (
  org_id     uuid   not null,
  seq        bigint not null check (seq >= 0),
  head_hash  bytea  not null check (pg_catalog.length(head_hash) = 32),
  primary key (org_id)
);
comment on table tenantgate.audit_heads is
  'Last (seq, hash) of each org''s audit chain. Anchor these outside the database.';
