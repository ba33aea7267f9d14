-- 01_rls_disabled: tenant tables without row-level security enabled.
--
-- A tenant table is any table outside pg_catalog and information_schema with a uuid column named
-- org_id or customer_id, and every table of schema tenantgate. Why it matters: without RLS enabled,
-- every policy on the table is ignored and any role with a privilege on it reads and writes every
-- tenant's rows. The isolation that tenantgate promises lives in these policies and nowhere else.
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
    and not c.relrowsecurity
)
select 'rls_disabled'::text as lint,
       pg_catalog.format('%I.%I', t.nspname, t.relname) as object,
       'row-level security is disabled: its policies are ignored and every role with a privilege '
       'on the table sees every tenant''s rows'::text as why,
       pg_catalog.format('alter table %I.%I enable row level security;', t.nspname, t.relname)
         as fix
from tenant_tables t
order by 2
