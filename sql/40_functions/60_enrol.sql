-- 40_functions/60_enrol.sql: put an existing table of yours under tenantgate's isolation.
--
--   select tenantgate.enrol_table('crm.notes', 'org_id', 'customer_id', array['select']);
--
-- Run it as the table's owner (or a superuser): it enables and FORCES row-level security, so even
-- the owner is filtered, creates the policy `tenantgate_isolation` for tenantgate_mediator
-- (rows of the verified session's org and customer only, for reads and writes), and grants the
-- mediator exactly the privileges listed. Roles in p_full_access_roles (your product's own
-- application role, say) get a policy that lets them see every row, as before enrolment:
-- without it, FORCE would hide every row from them.
-- It is SECURITY INVOKER on purpose: only someone who may alter the table can enrol it.

set local role tenantgate_owner;

create function tenantgate.enrol_table(
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
  v_role    name;
  v_tenant  text;
  v_attnum  smallint;
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
    'create policy tenantgate_isolation on %s as permissive for all to tenantgate_mediator '
    'using (%s) with check (%s)', p_table, v_tenant, v_tenant);
  execute pg_catalog.format(
    'comment on policy tenantgate_isolation on %s is %L', p_table,
    pg_catalog.format('tenantgate: only rows of the verified session''s org (%I) and customer (%I)',
                      p_org_column, p_customer_column));

  execute pg_catalog.format('revoke all on %s from tenantgate_mediator', p_table);
  if pg_catalog.cardinality(p_privileges) > 0 then
    execute pg_catalog.format('grant %s on %s to tenantgate_mediator',
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
  'Enable and force RLS on a table with uuid org and customer columns, scope the mediator to the '
  'verified session''s rows, and grant it exactly p_privileges. Run as the table owner.';

create function tenantgate.unenrol_table(p_table regclass)
returns void
language plpgsql
volatile
security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  execute pg_catalog.format('revoke all on %s from tenantgate_mediator', p_table);
  execute pg_catalog.format('drop policy if exists tenantgate_isolation on %s', p_table);
  execute pg_catalog.format('drop policy if exists tenantgate_full_access on %s', p_table);
  -- RLS stays enabled and forced: with no policy left that means nobody but superusers reads it.
  -- Disable it yourself if that is what you want.
end
$$;
comment on function tenantgate.unenrol_table(regclass) is
  'Remove tenantgate''s policies and grants from a table; RLS stays on (deny by default).';
