-- 05_definer_public_execute: SECURITY DEFINER functions that PUBLIC may execute.
--
-- Functions are executable by PUBLIC the moment they are created. Why it matters: a SECURITY
-- DEFINER function runs with its owner's rights, and tenantgate's owner sees every tenant's rows;
-- each one must be granted to exactly the role that needs it, and to nobody else.
select 'definer_public_execute'::text as lint,
       pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,
                         pg_catalog.pg_get_function_identity_arguments(p.oid)) as object,
       'SECURITY DEFINER function executable by PUBLIC: every role in the cluster runs it with '
       'its owner''s rights'::text as why,
       pg_catalog.format('revoke execute on function %s from public;',
                         pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid))) as fix
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef
  and n.nspname not in ('pg_catalog', 'information_schema')
  and exists (select 1
                from pg_catalog.aclexplode(coalesce(p.proacl,
                       pg_catalog.acldefault('f', p.proowner))) acl
               where acl.grantee = 0 and acl.privilege_type = 'EXECUTE')
order by 2
