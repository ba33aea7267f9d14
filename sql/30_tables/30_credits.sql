-- 30_tables/30_credits.sql: credit balances and the spend ledger.
--
-- The balance can never go below zero (check constraint as a backstop to the conditional update in
-- spend_credits), and a request id is charged at most once per org (unique key on the ledger).

set local role tenantgate_owner;

create table tenantgate.credit_accounts (
  org_id      uuid        not null references tenantgate.orgs (org_id),
  balance     bigint      not null default 0 check (balance >= 0),
  updated_at  timestamptz not null default pg_catalog.now(),
  primary key (org_id)
);
comment on table tenantgate.credit_accounts is 'One credit balance per org.';

create table tenantgate.credit_ledger (
  org_id         uuid        not null references tenantgate.orgs (org_id),
  entry_id       bigint      generated always as identity,
  request_id     text        not null check (pg_catalog.length(request_id) between 1 and 200),
  kind           text        not null check (kind in ('spend', 'grant')),
  amount         bigint      not null check (amount > 0),
  outcome        text        not null check (outcome in ('pending', 'charged', 'refused', 'granted')),
  balance_after  bigint,
  session_id     uuid,
  tool_name      text,
  created_at     timestamptz not null default pg_catalog.now(),
  primary key (org_id, entry_id)
);
-- Idempotency: one entry per (org, request id), whatever the concurrency.
create unique index credit_ledger_request_key on tenantgate.credit_ledger (org_id, request_id);
comment on table tenantgate.credit_ledger is
  'Every spend attempt and grant. A retried request id finds its first answer here.';
comment on column tenantgate.credit_ledger.outcome is
  'charged | refused (not enough credits) | granted; pending only inside the spending transaction.';
