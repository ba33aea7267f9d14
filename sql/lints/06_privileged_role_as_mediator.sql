-- 06_privileged_role_as_mediator: superuser or BYPASSRLS powers within reach of the mediator.
--
-- Finds roles with SUPERUSER or BYPASSRLS that are tenantgate_mediator itself, are members of it
-- (directly or through other roles: logins mapped to the mediator), or that tenantgate_mediator is
-- a member of (it can SET ROLE to them). Why it matters: superusers and BYPASSRLS roles skip every
-- row-level policy, FORCE included. If the mediator's credential is, becomes or logs in as such a
-- role, the session check in the policies protects nothing and every tenant's rows are readable.
with recursive mediator as (
  select r.oid from pg_catalog.pg_roles r where r.rolname = 'tenantgate_mediator'
),
members_of_mediator (roleid) as (          -- roles that can act as the mediator
  select m.oid from mediator m
  union
  select am.member
  from pg_catalog.pg_auth_members am
  join members_of_mediator mm on am.roleid = mm.roleid
),
mediator_can_become (roleid) as (          -- roles the mediator can act as
  select m.oid from mediator m
  union
  select am.roleid
  from pg_catalog.pg_auth_members am
  join mediator_can_become mb on am.member = mb.roleid
),
reach as (
  select roleid, 'is or logs in as tenantgate_mediator' as how from members_of_mediator
  union
  select roleid, 'tenantgate_mediator can SET ROLE to it' from mediator_can_become
)
select 'privileged_role_as_mediator'::text as lint,
       pg_catalog.quote_ident(r.rolname) as object,
       pg_catalog.format('%s and %s: it skips every row-level policy, so the mediator''s '
                         'credential could read every tenant''s rows',
                         pg_catalog.concat_ws(' and ',
                           case when r.rolsuper then 'superuser' end,
                           case when r.rolbypassrls then 'BYPASSRLS' end),
                         pg_catalog.string_agg(distinct x.how, ' and ')) as why,
       case
         when r.rolname = 'tenantgate_mediator' then
           'alter role tenantgate_mediator nosuperuser nobypassrls;'
         when pg_catalog.bool_or(x.how like 'is or logs%') then
           pg_catalog.format('revoke tenantgate_mediator from %I;  -- or: alter role %I nosuperuser nobypassrls;',
                             r.rolname, r.rolname)
         else
           pg_catalog.format('revoke %I from tenantgate_mediator;', r.rolname)
       end as fix
from reach x
join pg_catalog.pg_roles r on r.oid = x.roleid
where r.rolsuper or r.rolbypassrls
group by r.rolname, r.rolsuper, r.rolbypassrls
order by 2
