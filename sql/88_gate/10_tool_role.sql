-- 88_gate/10_tool_role.sql: the role that reads and writes tenant rows, and only for the gate.
--
-- Before this file the mediator's own login held the privileges on enrolled tables, so anyone with
-- its credential and one live session secret could read a customer's rows without a charge or an
-- audit row. From here on:
--   tenantgate_tool   NOLOGIN, NOBYPASSRLS, owns nothing but the generated tool functions in
--                     schema tenantgate_tools. Enrolled tables grant their privileges to it, and
--                     their tenantgate_isolation policy applies to it (RLS stays forced).
--   tenantgate_tools  one SECURITY DEFINER function per tool, generated from the reviewed tools
--                     file (`tenantgate tools apply`), executable only by tenantgate_owner, i.e.
--                     only from inside the gate's entry point tenantgate.call_tool.
-- The mediator keeps no privilege on any enrolled table (sql/88_gate/90_grants.sql).
-- Cluster-wide like sql/10_roles.sql: idempotent, needs CREATEROLE.

do $roles$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'tenantgate_tool') then
    create role tenantgate_tool nologin nosuperuser nocreatedb nocreaterole noinherit nobypassrls;
  end if;
end
$roles$;
alter role tenantgate_tool nologin nosuperuser nobypassrls;
-- The role running migrations and `tools apply` creates the tool functions as tenantgate_tool.
grant tenantgate_tool to current_user;

set local role tenantgate_owner;

create schema tenantgate_tools;
comment on schema tenantgate_tools is
  'Generated tool functions (tenantgate tools apply). Owned by tenantgate_tool; only the gate '
  '(tenantgate_owner) may execute them.';
grant usage, create on schema tenantgate_tools to tenantgate_tool;
-- Nobody else may even look up a tool function by name.
revoke all on schema tenantgate_tools from public;

-- Policies on enrolled tables call the context functions as the querying role.
grant usage on schema tenantgate to tenantgate_tool;
grant execute on function
  tenantgate.session_context(),
  tenantgate.setting_uuid(text),
  tenantgate.current_tenant(),
  tenantgate.current_org(),
  tenantgate.current_customer(),
  tenantgate.current_session(),
  tenantgate.current_operator(),
  tenantgate.current_connector()
  to tenantgate_tool;

-- Enrolment, restated for the tool role (replaces sql/40_functions/60_enrol.sql's version): the
-- policy and the privileges go to tenantgate_tool, and the mediator loses whatever it had.
create or replace function tenantgate.enrol_table(
  p_table             regclass,
  p_org_column        name default 'org_id',
  p_customer_column   name default 'customer_id',
  p_privileges        text[] default array['select'],
  p_full_access_roles name[] default '{}'
)
returns void
language plpgsql
volatile
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_column  name;
  v_priv    text;
  v_tenant  text;
  v_attnum  smallint;
  v_schema  name;
begin
  foreach v_column in array array[p_org_column, p_customer_column] loop
    if not exists (select 1 from pg_catalog.pg_attribute a
                    where a.attrelid = p_table and a.attname = v_column
                      and not a.attisdropped and a.atttypid = 'uuid'::regtype) then
      raise exception using errcode = '42703',
        message = pg_catalog.format('tenantgate: %s has no uuid column %I', p_table, v_column),
        hint = 'Name the org and customer columns (both uuid) with p_org_column and p_customer_column.';
    end if;
  end loop;
  foreach v_priv in array coalesce(p_privileges, '{}') loop
    if v_priv not in ('select', 'insert', 'update', 'delete') then
      raise exception using errcode = '22023',
        message = pg_catalog.format('tenantgate: privilege %L is not one of select, insert, update, delete', v_priv);
    end if;
  end loop;

  v_tenant := pg_catalog.format(
    '(%I, %I) = (select t.org_id, t.customer_id from tenantgate.current_tenant() t)',
    p_org_column, p_customer_column);

  execute pg_catalog.format('alter table %s enable row level security', p_table);
  execute pg_catalog.format('alter table %s force row level security', p_table);
  execute pg_catalog.format('drop policy if exists tenantgate_isolation on %s', p_table);
  execute pg_catalog.format(
    'create policy tenantgate_isolation on %s as permissive for all to tenantgate_tool '
    'using (%s) with check (%s)', p_table, v_tenant, v_tenant);
  execute pg_catalog.format(
    'comment on policy tenantgate_isolation on %s is %L', p_table,
    pg_catalog.format('tenantgate: only rows of the verified session''s org (%I) and customer (%I), '
                      'for the gate''s tool functions', p_org_column, p_customer_column));

  select n.nspname into v_schema from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = p_table;
  execute pg_catalog.format('grant usage on schema %I to tenantgate_tool', v_schema);
  execute pg_catalog.format('revoke all on %s from tenantgate_mediator', p_table);
  execute pg_catalog.format('revoke all on %s from tenantgate_tool', p_table);
  if pg_catalog.cardinality(p_privileges) > 0 then
    execute pg_catalog.format('grant %s on %s to tenantgate_tool',
                              pg_catalog.array_to_string(p_privileges, ', '), p_table);
  end if;

  execute pg_catalog.format('drop policy if exists tenantgate_full_access on %s', p_table);
  if pg_catalog.cardinality(p_full_access_roles) > 0 then
    execute pg_catalog.format(
      'create policy tenantgate_full_access on %s as permissive for all to %s using (true) with check (true)',
      p_table,
      (select pg_catalog.string_agg(pg_catalog.quote_ident(r), ', ') from pg_catalog.unnest(p_full_access_roles) r));
  end if;

  -- The policy is cheap only if an index leads with the org column.
  select a.attnum into v_attnum from pg_catalog.pg_attribute a
   where a.attrelid = p_table and a.attname = p_org_column;
  if not exists (select 1 from pg_catalog.pg_index i
                  where i.indrelid = p_table and i.indkey[0] = v_attnum) then
    raise warning 'tenantgate: % has no index leading with %; add one: create index on % (%, %)',
      p_table, p_org_column, p_table, p_org_column, p_customer_column;
  end if;
end
$$;
comment on function tenantgate.enrol_table(regclass, name, name, text[], name[]) is
  'Enable and force RLS on a table with uuid org and customer columns, scope the gate''s tool role '
  'to the verified session''s rows, and grant it exactly p_privileges. Run as the table owner.';

create or replace function tenantgate.unenrol_table(p_table regclass)
returns void
language plpgsql
volatile
security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  execute pg_catalog.format('revoke all on %s from tenantgate_mediator', p_table);
  execute pg_catalog.format('revoke all on %s from tenantgate_tool', p_table);
  execute pg_catalog.format('drop policy if exists tenantgate_isolation on %s', p_table);
  execute pg_catalog.format('drop policy if exists tenantgate_full_access on %s', p_table);
end
$$;
comment on function tenantgate.unenrol_table(regclass) is
  'Remove tenantgate''s policies and grants from a table; RLS stays on (deny by default).';

reset role;

-- Tables enrolled before this revision: move their policy and privileges from the mediator to the
-- tool role. Runs as the migrating role (the tables' owner or a superuser), like enrol_table.
do $reenrol$
declare
  r record;
begin
  for r in
    select p.polrelid::regclass as tbl,
           array(select pr.privilege_type::text from information_schema.role_table_grants pr
                  where pr.grantee = 'tenantgate_mediator'
                    and pr.table_schema = n.nspname and pr.table_name = c.relname
                    and pr.privilege_type in ('SELECT', 'INSERT', 'UPDATE', 'DELETE')) as privs
      from pg_catalog.pg_policy p
      join pg_catalog.pg_class c on c.oid = p.polrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where p.polname = 'tenantgate_isolation'
  loop
    execute pg_catalog.format('alter policy tenantgate_isolation on %s to tenantgate_tool', r.tbl);
    execute pg_catalog.format('grant usage on schema %I to tenantgate_tool',
      (select n.nspname from pg_catalog.pg_class c join pg_catalog.pg_namespace n
          on n.oid = c.relnamespace where c.oid = r.tbl));
    if pg_catalog.cardinality(r.privs) > 0 then
      execute pg_catalog.format('grant %s on %s to tenantgate_tool',
                                pg_catalog.array_to_string(r.privs, ', '), r.tbl);
    end if;
    execute pg_catalog.format('revoke all on %s from tenantgate_mediator', r.tbl);
  end loop;
end
$reenrol$;
