-- 13_citus_ready: tenant tables that could not be distributed by org_id (Citus) as they are.
--
-- A tenant table is any table outside the system schemas with a uuid org_id or customer_id
-- column, except tenantgate.orgs: the directory of orgs, one small row per org, is a reference
-- table (a copy on every node), where a global key such as the org's name is allowed. Finds:
--   * a tenant table without an org_id column (it has no distribution column);
--   * a primary key, unique constraint or unique index that does not include org_id;
--   * a foreign key between two tenant tables that does not pair org_id with org_id;
--   * a foreign key from a table without org_id (a reference table) to a tenant table.
-- Why it matters: on a distributed engine each org's rows live on one node, and a node can check
-- only what it holds. Citus refuses to distribute a table with such a key, and the rule holds on
-- one PostgreSQL too: a key without org_id is a key shared across orgs (see
-- 10_unique_key_not_tenant_led). Caught here, it is fixed before anyone has to scale out.
with tables as (
  select c.oid, n.nspname, c.relname,
         (select a.attnum from pg_catalog.pg_attribute a
           where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped
             and a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype) as org_attnum,
         exists (select 1 from pg_catalog.pg_attribute a
                  where a.attrelid = c.oid and a.attname in ('org_id', 'customer_id')
                    and not a.attisdropped
                    and a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype) as is_tenant
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p')
    and not c.relispartition
    and n.nspname not in ('pg_catalog', 'information_schema', 'citus', 'columnar')
    and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
    and c.oid is distinct from pg_catalog.to_regclass('tenantgate.orgs')::pg_catalog.oid
),
tenant as (
  select * from tables where is_tenant
),
problems as (
  select t.nspname, t.relname,
         'table has no uuid org_id column: nothing to distribute it by' as why,
         pg_catalog.format('alter table %I.%I add column org_id uuid;  -- fill it, key by it',
                           t.nspname, t.relname) as fix
  from tenant t
  where t.org_attnum is null
  union all
  select t.nspname, t.relname,
         pg_catalog.format('%s %I does not include org_id: each node checks uniqueness only '
                           'among the orgs it holds',
                           case when i.indisprimary then 'primary key' else 'unique key' end,
                           r.relname),
         pg_catalog.format('-- recreate %I with org_id as its first column', r.relname)
  from tenant t
  join pg_catalog.pg_index i on i.indrelid = t.oid and i.indisunique
  join pg_catalog.pg_class r on r.oid = i.indexrelid
  where t.org_attnum is not null
    and not (t.org_attnum = any (i.indkey::pg_catalog.int2[]))
  union all
  select t.nspname, t.relname,
         pg_catalog.format('foreign key %I to %s does not pair org_id with org_id: the referenced '
                           'row may live on another node', k.conname, k.confrelid::pg_catalog.regclass),
         pg_catalog.format('-- recreate %I as foreign key (org_id, ...) references %s (org_id, ...)',
                           k.conname, k.confrelid::pg_catalog.regclass)
  from tenant t
  join pg_catalog.pg_constraint k on k.conrelid = t.oid and k.contype = 'f'
  join tenant rt on rt.oid = k.confrelid
  where t.org_attnum is not null and rt.org_attnum is not null
    and not exists (select 1
                      from pg_catalog.generate_subscripts(k.conkey, 1) j
                     where k.conkey[j] = t.org_attnum and k.confkey[j] = rt.org_attnum)
  union all
  select t.nspname, t.relname,
         pg_catalog.format('foreign key %I of a table without org_id (a reference table) points '
                           'at tenant table %s: a reference table may not reference a distributed one',
                           k.conname, k.confrelid::pg_catalog.regclass),
         pg_catalog.format('-- add org_id to %I.%I and to %I, or drop the foreign key',
                           t.nspname, t.relname, k.conname)
  from tables t
  join pg_catalog.pg_constraint k on k.conrelid = t.oid and k.contype = 'f'
  join tenant rt on rt.oid = k.confrelid and rt.org_attnum is not null
  where t.org_attnum is null and not t.is_tenant
)
select 'citus_ready'::text as lint,
       pg_catalog.format('%I.%I', p.nspname, p.relname) as object,
       p.why::text as why,
       p.fix::text as fix
from problems p
order by 2, 3
