-- 10_unique_key_not_tenant_led: unique keys of enrolled tables that do not lead with the tenant columns.
--
-- An enrolled table is one with a `tenantgate_isolation` policy; its tenant columns are the columns
-- that policy reads (the org and customer columns given to tenantgate.enrol_table). Finds every
-- primary key, unique constraint and unique index of such a table whose leading key columns are not
-- exactly those tenant columns (in any order). Why it matters: uniqueness is checked across every
-- row, whatever RLS hides. With `unique (number)` or `unique (org_id, number)` one customer learns,
-- from a unique violation, that another customer holds that number; a key such as
-- `(org_id, ticket_id)` over a shared identity hands out numbers a tenant can count. Keys that
-- start with the tenant columns collide only within one customer's own rows.
with enrolled as (
  select p.polrelid as relid,
         pg_catalog.array_agg(distinct d.refobjsubid) as tenant_cols
  from pg_catalog.pg_policy p
  join pg_catalog.pg_depend d
    on d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass and d.objid = p.oid
   and d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass and d.refobjid = p.polrelid
   and d.refobjsubid > 0
  where p.polname = 'tenantgate_isolation'
  group by p.polrelid
),
keys as (
  select e.relid, e.tenant_cols, i.indexrelid, i.indisprimary,
         (i.indkey::pg_catalog.int2[])[0:pg_catalog.cardinality(e.tenant_cols) - 1] as leading,
         (select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by a.attnum)
            from pg_catalog.pg_attribute a
           where a.attrelid = e.relid and a.attnum = any (e.tenant_cols)) as tenant_names,
         c.conname, r.relname as index_name, i.indnkeyatts as key_count
  from enrolled e
  join pg_catalog.pg_index i on i.indrelid = e.relid and i.indisunique
  join pg_catalog.pg_class r on r.oid = i.indexrelid
  left join pg_catalog.pg_constraint c on c.conindid = i.indexrelid and c.conrelid = e.relid
                                      and c.contype in ('p', 'u')
)
select 'unique_key_not_tenant_led'::text as lint,
       pg_catalog.format('%s %I on %s (%s)', case when k.indisprimary then 'primary key'
                                                 when k.conname is not null then 'unique constraint'
                                                 else 'unique index' end,
                         k.index_name, k.relid::pg_catalog.regclass,
                         (select pg_catalog.string_agg(pg_catalog.pg_get_indexdef(k.indexrelid, n, true),
                                                       ', ' order by n)
                            from pg_catalog.generate_series(1, k.key_count) n))
         as object,
       pg_catalog.format('a unique key that does not start with the tenant columns (%s) is checked '
                         'across tenants: a unique violation tells one customer what another holds',
                         k.tenant_names) as why,
       pg_catalog.format('-- recreate it with the tenant columns first, e.g. unique (%s, <the key>) '
                         'and a key generated per tenant; then drop %I',
                         k.tenant_names, k.index_name)
         as fix
from keys k
where not (k.leading::int2[] @> k.tenant_cols::int2[] and k.tenant_cols::int2[] @> k.leading::int2[])
order by 2
