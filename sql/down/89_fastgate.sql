-- down/89_fastgate.sql: back to sql/88_gate's gate, one balance row per org and one bucket row
-- per (org, operator, tool). The revision's downgrade then re-runs sql/40_functions/40_credits.sql
-- and sql/88_gate/40_call.sql as `create or replace` (migrations/sqlfile.rerun_function_files),
-- which restores spend_credits_for, grant_credits, rate_try and call_tool; gate_tenant's old
-- body is restated below.

set local role tenantgate_owner;

-- Credits (sql/30_tables/30_credits.sql): each org's slots add up to its single balance row again.
alter view tenantgate.credit_accounts rename to credit_accounts_of_slots;
create table tenantgate.credit_accounts (
  org_id      uuid        not null references tenantgate.orgs (org_id),
  balance     bigint      not null default 0 check (balance >= 0),
  updated_at  timestamptz not null default pg_catalog.now(),
  primary key (org_id)
);
comment on table tenantgate.credit_accounts is 'One credit balance per org.';
insert into tenantgate.credit_accounts (org_id, balance, updated_at)
select v.org_id, v.balance, v.updated_at from tenantgate.credit_accounts_of_slots v;
drop view tenantgate.credit_accounts_of_slots;
drop function tenantgate.credit_accounts_write();
alter table tenantgate.credit_accounts enable row level security;
alter table tenantgate.credit_accounts force row level security;
create policy owner_all on tenantgate.credit_accounts for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.credit_accounts for select to tenantgate_admin using (true);
grant select on tenantgate.credit_accounts to tenantgate_admin;

drop function tenantgate.credit_take(uuid, bigint, integer);
drop function tenantgate.credit_spread(uuid, bigint, bigint);
drop table tenantgate.credit_slots;

-- Rate limits: one bucket row per (org, operator, tool); split buckets keep their slot 0.
delete from tenantgate.rate_buckets b where b.slot <> 0;
alter table tenantgate.rate_buckets drop constraint rate_buckets_pkey;
alter table tenantgate.rate_buckets drop column slot;
alter table tenantgate.rate_buckets add primary key (org_id, operator_id, tool_name);
alter table tenantgate.rate_buckets reset (fillfactor);

-- sql/88_gate/10_tool_role.sql
create or replace function tenantgate.gate_tenant()
returns table (org_id uuid, customer_id uuid)
language sql
stable
rows 1
set search_path = pg_catalog, pg_temp
as $$
  select tenantgate.setting_uuid('app.org_id'), tenantgate.setting_uuid('app.customer_id')
$$;
