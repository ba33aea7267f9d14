-- 02_rls_not_forced: tenant tables with row-level security enabled but not FORCED.
--
-- Same tenant tables as 01_rls_disabled. Why it matters: without FORCE ROW LEVEL SECURITY the
-- table's owner skips every policy, and so does every SECURITY DEFINER function owned by it: one
-- definer function with a loose WHERE clause then reads across tenants, silently.
with tenant_tables as (
  select c.oid, c.relname, n.nspname
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p')
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
    and (n.nspname = 'tenantgate'
         or exists (select 1 from pg_catalog.pg_attribute a
                     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                       and a.attname in ('org_id', 'customer_id')
                       and a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype))
    and c.relrowsecurity
    and not c.relforcerowsecurity
)
select 'rls_not_forced'::text as lint,
       pg_catalog.format('%I.%I', t.nspname, t.relname) as object,
       'row-level security is not forced: the table owner, and every SECURITY DEFINER function it '
       'owns, skips the policies'::text as why,
       pg_catalog.format('alter table %I.%I force row level security;', t.nspname, t.relname)
         as fix
from tenant_tables t
order by 2
