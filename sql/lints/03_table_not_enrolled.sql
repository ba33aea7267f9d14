-- 03_table_not_enrolled: tables holding an org or customer column that tenantgate does not guard.
--
-- Finds tables outside pg_catalog, information_schema and tenantgate with a uuid column named
-- org_id or customer_id but no `tenantgate_isolation` policy (the one tenantgate.enrol_table
-- creates). Why it matters: such a table holds tenant data that no verified session scopes; if the
-- mediator is ever granted it, or a user-written policy forgets a tenant column, rows of every
-- customer are one query away. Enrol it, or move it out of reach of the mediator on purpose.
with candidates as (
  select c.oid, c.relname, n.nspname,
         pg_catalog.bool_or(a.attname = 'org_id') as has_org,
         pg_catalog.bool_or(a.attname = 'customer_id') as has_customer
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  join pg_catalog.pg_attribute a
    on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
   and a.attname in ('org_id', 'customer_id')
   and a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype
  where c.relkind in ('r', 'p')
    and n.nspname not in ('pg_catalog', 'information_schema', 'tenantgate')
    and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
    and not exists (select 1 from pg_catalog.pg_policy p
                     where p.polrelid = c.oid and p.polname = 'tenantgate_isolation')
  group by c.oid, c.relname, n.nspname
)
select 'table_not_enrolled'::text as lint,
       pg_catalog.format('%I.%I', t.nspname, t.relname) as object,
       'holds tenant data (an org or customer column) but has no tenantgate_isolation policy: no '
       'verified session scopes its rows'::text as why,
       case
         when t.has_org and t.has_customer then
           pg_catalog.format('select tenantgate.enrol_table(%L, ''org_id'', ''customer_id'');',
                             pg_catalog.format('%I.%I', t.nspname, t.relname))
         else
           pg_catalog.format('-- add the missing %s column (uuid), then: '
                             'select tenantgate.enrol_table(%L, ''org_id'', ''customer_id'');',
                             case when t.has_org then 'customer_id' else 'org_id' end,
                             pg_catalog.format('%I.%I', t.nspname, t.relname))
       end as fix
from candidates t
order by 2
