-- 11_mediator_enrolled_privilege: any privilege of tenantgate_mediator on an enrolled table.
--
-- An enrolled table is one with a `tenantgate_isolation` policy. Looks at table and column
-- privileges held by tenantgate_mediator directly, through PUBLIC, or through any role it can
-- SET ROLE to. Why it matters: the mediator reaches tenant rows only through the gate's entry
-- points, which admit, charge and audit every call; enrolled tables grant their privileges to the
-- NOLOGIN role tenantgate_tool that owns the generated tool functions. A direct grant lets whoever
-- holds the mediator's credential and one live session secret read or write rows with no charge,
-- no audit row and no approval, whatever the policy says about which rows.
with recursive mediator as (
  select r.oid from pg_catalog.pg_roles r where r.rolname = 'tenantgate_mediator'
),
can_become (roleid) as (
  select m.oid from mediator m
  union
  select am.roleid
  from pg_catalog.pg_auth_members am
  join can_become cb on am.member = cb.roleid
),
holders as (
  select roleid from can_become
  union all
  select 0::pg_catalog.oid                          -- PUBLIC
),
enrolled as (
  select distinct p.polrelid as relid
  from pg_catalog.pg_policy p
  where p.polname = 'tenantgate_isolation'
),
grants as (
  select e.relid, acl.grantee, acl.privilege_type, null::name as column_name
  from enrolled e
  join pg_catalog.pg_class c on c.oid = e.relid
  cross join lateral pg_catalog.aclexplode(c.relacl) acl
  union all
  select e.relid, acl.grantee, acl.privilege_type, a.attname
  from enrolled e
  join pg_catalog.pg_attribute a
    on a.attrelid = e.relid and a.attnum > 0 and not a.attisdropped and a.attacl is not null
  cross join lateral pg_catalog.aclexplode(a.attacl) acl
)
select 'mediator_enrolled_privilege'::text as lint,
       pg_catalog.format('%s%s on %s (granted to %s)', g.privilege_type,
                         case when g.column_name is not null
                              then pg_catalog.format(' (%I)', g.column_name) else '' end,
                         g.relid::pg_catalog.regclass,
                         case when g.grantee = 0 then 'public'
                              else pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) end)
         as object,
       'the mediator may reach this enrolled table''s rows without the gate: no charge, no audit '
       'row, no approval; tenant data goes through the gate''s entry points only'::text as why,
       pg_catalog.format('revoke %s%s on %s from %s;  -- the tool functions use tenantgate_tool''s '
                         'privileges', pg_catalog.lower(g.privilege_type),
                         case when g.column_name is not null
                              then pg_catalog.format(' (%I)', g.column_name) else '' end,
                         g.relid::pg_catalog.regclass,
                         case when g.grantee = 0 then 'public'
                              else pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) end)
         as fix
from grants g
where g.grantee in (select roleid from holders)
order by 2
