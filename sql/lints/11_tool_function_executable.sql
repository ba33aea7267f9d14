-- 11_tool_function_executable: tool functions that anyone but the gate may execute.
--
-- Finds functions in schema tenantgate_tools with EXECUTE granted to PUBLIC or to any role other
-- than tenantgate_owner (who owns the gate's entry points) and the function's own owner.
-- Why it matters: a tool function takes the org and customer as arguments and runs with the rights of
-- tenantgate_tool over the enrolled tables. Only the gate checks that those arguments come from a
-- verified session and charges, rate-limits and audits the call; whoever else may execute it picks
-- any tenant and reads for free. New functions are executable by PUBLIC until revoked.
select 'tool_function_executable'::text as lint,
       pg_catalog.format('%I.%I(%s) (executable by %s)', n.nspname, p.proname,
                         pg_catalog.pg_get_function_identity_arguments(p.oid),
                         case when acl.grantee = 0 then 'public'
                              else pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(acl.grantee)) end)
         as object,
       'a tool function trusts its org and customer arguments; only the gate, which takes them from '
       'a verified session and charges and audits the call, may execute it'::text as why,
       pg_catalog.format('revoke execute on function %I.%I(%s) from %s;', n.nspname, p.proname,
                         pg_catalog.pg_get_function_identity_arguments(p.oid),
                         case when acl.grantee = 0 then 'public'
                              else pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(acl.grantee)) end)
         as fix
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
cross join lateral pg_catalog.aclexplode(coalesce(p.proacl,
                                                  pg_catalog.acldefault('f', p.proowner))) acl
where n.nspname = 'tenantgate_tools'
  and acl.privilege_type = 'EXECUTE'
  and acl.grantee <> p.proowner
  and acl.grantee is distinct from (select r.oid from pg_catalog.pg_roles r
                                     where r.rolname = 'tenantgate_owner')
order by 2
