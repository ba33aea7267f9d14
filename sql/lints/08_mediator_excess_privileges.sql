-- 08_mediator_excess_privileges: privileges of tenantgate_mediator beyond what the gate allows.
--
-- Looks at every privilege the mediator holds on relations and columns, directly, through PUBLIC or
-- through a role it can SET ROLE to, plus CREATE on schemas and on the database, plus EXECUTE on
-- SECURITY DEFINER functions granted to it (PUBLIC's EXECUTE is 05_definer_public_execute's).
-- Allowed are only:
--   * in schema tenantgate: SELECT and INSERT on session_messages (its own session's history),
--     SELECT on tool_definitions (parameter schemas and HTTP specs, not tenant data); data
--     classes are the gate's business, so column_classes and scope_classes are not the mediator's;
--   * NOTHING on an enrolled table (one with the tenantgate_isolation policy): tenant rows reach
--     the mediator only through tenantgate.call_tool, admitted, charged and audited;
--   * elsewhere: SELECT, INSERT, UPDATE or DELETE on a table with row-level security enabled and
--     a policy of your own for the mediator covering that command;
--   * EXECUTE, among SECURITY DEFINER functions, only on the gate's entry points (call_tool,
--     list_tools, approval_answer, upstream_outcome) and the context readers session_context and
--     current_upstream_credential.
-- Why it matters: a mediator grant on an enrolled table lets a compromised mediator with one live
-- session secret read or write that customer's rows with no charge and no audit row. RLS filters
-- rows only where a policy applies. A grant on a view runs with the view owner's rights
-- (tenantgate_owner sees every row), TRUNCATE, REFERENCES and TRIGGER ignore RLS altogether, a
-- grant on a table without a covering policy is either dead weight or, once RLS is switched off,
-- an open door, CREATE lets the mediator own objects (07), and a SECURITY DEFINER function runs
-- with its owner's rights: one that takes a cost, an amount, an audit decision or an approval
-- from its caller lets the mediator decide them.
with recursive mediator as (
  select r.oid from pg_catalog.pg_roles r where r.rolname = 'tenantgate_mediator'
),
can_become (roleid) as (
  select m.oid from mediator m
  union
  select am.roleid from pg_catalog.pg_auth_members am join can_become cb on am.member = cb.roleid
),
grantees (oid, name) as (
  select cb.roleid, pg_catalog.quote_ident(r.rolname)
  from can_become cb join pg_catalog.pg_roles r on r.oid = cb.roleid
  union all
  select 0::oid, 'public' where exists (select 1 from mediator)
),
relation_privileges as (
  select c.oid as relid, n.nspname, c.relname, c.relkind, c.relrowsecurity,
         c.relforcerowsecurity, null::name as attname, acl.privilege_type, g.name as grantee
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  cross join lateral pg_catalog.aclexplode(c.relacl) acl
  join grantees g on g.oid = acl.grantee
  where c.relacl is not null
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  union all
  select c.oid, n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
         a.attname, acl.privilege_type, g.name
  from pg_catalog.pg_attribute a
  join pg_catalog.pg_class c on c.oid = a.attrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  cross join lateral pg_catalog.aclexplode(a.attacl) acl
  join grantees g on g.oid = acl.grantee
  where a.attacl is not null and not a.attisdropped
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
),
judged as (
  select rp.*,
         exists (select 1 from pg_catalog.pg_policy p
                  where p.polrelid = rp.relid and p.polname = 'tenantgate_isolation') as enrolled,
         case rp.relkind when 'v' then 'view' when 'm' then 'materialized view'
                         when 'S' then 'sequence' when 'f' then 'foreign table'
                         else 'table' end as kind,
         -- a mediator policy covers this command on this table (and, in tenantgate, the
         -- privilege is one of the few the mediator needs)
         (rp.relkind in ('r', 'p')
          and rp.privilege_type in ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
          and exists (select 1 from pg_catalog.pg_policy p
                       where p.polrelid = rp.relid
                         and (p.polroles operator(pg_catalog.&&)
                              array[0::oid, (select m.oid from mediator m)])
                         and p.polcmd in ('*', case rp.privilege_type when 'SELECT' then 'r'
                                                                      when 'INSERT' then 'a'
                                                                      when 'UPDATE' then 'w'
                                                                      when 'DELETE' then 'd'
                                                end))
          and not exists (select 1 from pg_catalog.pg_policy p
                           where p.polrelid = rp.relid and p.polname = 'tenantgate_isolation')
          and (rp.nspname <> 'tenantgate'
               or (rp.relname, rp.privilege_type) in (('session_messages', 'SELECT'),
                                                      ('session_messages', 'INSERT'),
                                                      ('tool_definitions', 'SELECT')))
         ) as covered,
         -- and enforced (for the mediator, which owns nothing, enabled is enough; FORCE for the
         -- owner is 02_rls_not_forced's business)
         rp.relrowsecurity as enforced
  from relation_privileges rp
),
excess as (
  select j.* from judged j where not (j.covered and j.enforced)
)
select 'mediator_excess_privileges'::text as lint,
       pg_catalog.format('%s on %s %I.%I%s (granted to %s)', e.privilege_type, e.kind, e.nspname,
                         e.relname,
                         case when e.attname is null then ''
                              else pg_catalog.format(' column %I', e.attname) end,
                         e.grantee) as object,
       case
         when e.enrolled then
           'an enrolled table: the mediator reads and writes tenant rows only through '
           'tenantgate.call_tool (admitted, charged, audited); this grant skips the gate'
         when e.kind <> 'table' then
           pg_catalog.format('a %s runs with its owner''s rights, not under the mediator''s '
                             'row-level policies', e.kind)
         when e.privilege_type not in ('SELECT', 'INSERT', 'UPDATE', 'DELETE') then
           pg_catalog.format('%s is not filtered by row-level security', e.privilege_type)
         when e.covered then
           'a mediator policy covers this privilege, but row-level security is disabled on the '
           'table, so the policy is ignored: the grant reaches every tenant''s rows'
         else
           'no row-level policy for the mediator covers this privilege: the grant is beyond what '
           'its policies allow'
       end as why,
       case when e.covered then
         pg_catalog.format('alter table %I.%I enable row level security;',
                           e.nspname, e.relname)
       when e.attname is null then
         pg_catalog.format('revoke %s on %I.%I from %s;', e.privilege_type, e.nspname, e.relname,
                           e.grantee)
       else
         pg_catalog.format('revoke %s (%I) on %I.%I from %s;', e.privilege_type, e.attname,
                           e.nspname, e.relname, e.grantee)
       end as fix
from excess e
union all
select 'mediator_excess_privileges',
       pg_catalog.format('CREATE on schema %I (granted to %s)', n.nspname, g.name),
       'CREATE on a schema lets the mediator create, and so own, objects',
       pg_catalog.format('revoke create on schema %I from %s;', n.nspname, g.name)
from pg_catalog.pg_namespace n
cross join lateral pg_catalog.aclexplode(n.nspacl) acl
join grantees g on g.oid = acl.grantee
where n.nspacl is not null and acl.privilege_type = 'CREATE'
  and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
union all
select 'mediator_excess_privileges',
       pg_catalog.format('CREATE on database %I (granted to %s)', d.datname, g.name),
       'CREATE on the database lets the mediator create schemas, and so own objects',
       pg_catalog.format('revoke create on database %I from %s;', d.datname, g.name)
from pg_catalog.pg_database d
cross join lateral pg_catalog.aclexplode(d.datacl) acl
join grantees g on g.oid = acl.grantee
where d.datname = pg_catalog.current_database() and d.datacl is not null
  and acl.privilege_type = 'CREATE'
union all
select 'mediator_excess_privileges',
       pg_catalog.format('EXECUTE on function %s (granted to %s)', p.oid::regprocedure, g.name),
       'a SECURITY DEFINER function runs with its owner''s rights; the mediator may call only the '
       'gate''s entry points (tenantgate.call_tool, list_tools, approval_answer)',
       pg_catalog.format('revoke execute on function %s from %s;', p.oid::regprocedure, g.name)
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
cross join lateral pg_catalog.aclexplode(p.proacl) acl
join grantees g on g.oid = acl.grantee
where p.prosecdef and p.proacl is not null and acl.privilege_type = 'EXECUTE'
  and acl.grantee <> 0
  and n.nspname not in ('pg_catalog', 'information_schema')
  and not (n.nspname = 'tenantgate'
           and p.proname in ('call_tool', 'list_tools', 'approval_answer', 'upstream_outcome',
                             'session_context', 'current_upstream_credential'))
order by 2
