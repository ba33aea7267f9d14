-- 80_mediator/20_rate_limits.sql: token buckets per (org, operator, tool), shared by every
-- mediator process because they live here.
--
-- A bucket holds up to p_burst tokens and refills at p_per_second; a call takes one. The take is a
-- single upsert whose WHERE refuses when less than one token is left, so concurrent callers never
-- overdraw a bucket (the row lock serialises them). A refusal raises SQLSTATE TG429, which aborts
-- the caller's transaction: nothing after it in the same pipeline runs.

set local role tenantgate_owner;

create table tenantgate.rate_buckets (
  org_id       uuid             not null,
  operator_id  uuid             not null,
  tool_name    text             not null,
  tokens       double precision not null,
  updated_at   timestamptz      not null,
  primary key (org_id, operator_id, tool_name),
  foreign key (org_id, operator_id) references tenantgate.operators (org_id, operator_id)
    on delete cascade
);
comment on table tenantgate.rate_buckets is
  'Rate-limit token buckets per operator and tool (state only; limits come from the caller).';

alter table tenantgate.rate_buckets enable row level security;
alter table tenantgate.rate_buckets force row level security;
create policy owner_all on tenantgate.rate_buckets for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.rate_buckets for select to tenantgate_admin using (true);

-- Internal (no grant): the bucket arithmetic for an already verified org and operator.
create function tenantgate.rate_take_for(p_org_id uuid, p_operator_id uuid, p_tool_name text,
                                         p_burst integer, p_per_second double precision)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  if p_burst is null or p_burst < 1 or p_per_second is null or p_per_second <= 0 then
    raise exception using errcode = '22023', message = 'tenantgate: bad rate limit';
  end if;
  insert into tenantgate.rate_buckets as b (org_id, operator_id, tool_name, tokens, updated_at)
  values (p_org_id, p_operator_id, p_tool_name, p_burst - 1, v_now)
  on conflict (org_id, operator_id, tool_name) do update
    set tokens = least(p_burst::double precision,
                       b.tokens + extract(epoch from v_now - b.updated_at)::double precision
                                  * p_per_second) - 1,
        updated_at = v_now
    where least(p_burst::double precision,
                b.tokens + extract(epoch from v_now - b.updated_at)::double precision
                           * p_per_second) >= 1;
  if not found then
    raise exception using errcode = 'TG429', message = 'tenantgate: rate limited';
  end if;
end
$$;
comment on function tenantgate.rate_take_for(uuid, uuid, text, integer, double precision) is
  'Internal: take one token from (org, operator, tool)''s bucket; SQLSTATE TG429 when empty.';

-- The mediator's entry: org and operator come from the verified context, never from arguments.
create function tenantgate.rate_take(p_tool_name text, p_burst integer,
                                     p_per_second double precision)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ctx record;
begin
  select c.org_id, c.operator_id into v_ctx from tenantgate.verified_context() c;
  perform tenantgate.rate_take_for(v_ctx.org_id, v_ctx.operator_id, p_tool_name, p_burst,
                                   p_per_second);
end
$$;
comment on function tenantgate.rate_take(text, integer, double precision) is
  'Take one token from the verified operator''s bucket for this tool; SQLSTATE TG429 when empty.';
