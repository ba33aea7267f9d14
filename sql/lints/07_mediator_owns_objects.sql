-- 07_mediator_owns_objects: objects owned by tenantgate_mediator.
--
-- Finds every object of this database (and every shared one: databases, tablespaces) that
-- tenantgate_mediator owns. Why it matters: an owner may alter, disable row-level security on,
-- grant and drop what it owns, and skips RLS on its tables unless FORCE is set; the mediator is
-- meant to hold exactly the rights its policies and grants give it. Everything belongs to
-- tenantgate_owner (or to your own schema owners), never to a login role of the request path.
select 'mediator_owns_objects'::text as lint,
       pg_catalog.format('%s %s', o.type, o.identity) as object,
       'owned by tenantgate_mediator: an owner can alter, re-grant or drop it and skips row-level '
       'security on its own tables'::text as why,
       case
         when o.type in ('table', 'view', 'materialized view', 'sequence', 'foreign table',
                         'function', 'procedure', 'schema', 'type', 'domain', 'aggregate',
                         'database', 'tablespace', 'language', 'server', 'collation',
                         'conversion', 'text search dictionary', 'text search configuration',
                         'operator', 'event trigger', 'publication', 'subscription',
                         'large object', 'statistics object', 'operator class',
                         'operator family', 'foreign-data wrapper')
           then pg_catalog.format('alter %s %s owner to tenantgate_owner;',
                                  case o.type when 'statistics object' then 'statistics'
                                              when 'foreign-data wrapper' then 'foreign data wrapper'
                                              else o.type end,
                                  o.identity)
         else 'reassign owned by tenantgate_mediator to tenantgate_owner;'
       end as fix
from pg_catalog.pg_shdepend d
cross join lateral pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) o
where d.deptype = 'o'
  and d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
  and d.refobjid = (select r.oid from pg_catalog.pg_roles r
                     where r.rolname = 'tenantgate_mediator')
  and d.dbid in (0, (select db.oid from pg_catalog.pg_database db
                      where db.datname = pg_catalog.current_database()))
order by 2
