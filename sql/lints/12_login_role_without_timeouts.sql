-- 12_login_role_without_timeouts: request-path login roles without time limits or log hygiene.
--
-- Looks at tenantgate_mediator, tenantgate_session_manager and every LOGIN role that is a member
-- of either (a login mapped with `grant tenantgate_mediator to my_login`: role settings are not
-- inherited, so that login needs its own; tenantgate_admin, the command line's role, is a member
-- of the session manager but not on the request path, and is left out). Each must carry, as a
-- role setting for every database or for this one: statement_timeout, lock_timeout and
-- idle_in_transaction_session_timeout (not 0), log_parameter_max_length = 0 and
-- log_parameter_max_length_on_error = 0.
-- Why it matters: without the timeouts one client that opens a transaction and holds an org's
-- audit-chain or credit row lock stalls every call of that org for as long as it likes. Without
-- the log settings, turning on `log_statement = all` or duration logging writes every bind
-- parameter, session secrets included, to the server log.
with recursive named as (
  select r.oid from pg_catalog.pg_roles r
  where r.rolname in ('tenantgate_mediator', 'tenantgate_session_manager')
),
members (roleid) as (
  select oid from named
  union
  select am.member
  from pg_catalog.pg_auth_members am
  join members m on am.roleid = m.roleid
),
checked as (
  select r.oid, r.rolname
  from pg_catalog.pg_roles r
  where r.oid in (select oid from named)
     or (r.oid in (select roleid from members) and r.rolcanlogin
         and r.rolname <> 'tenantgate_admin')
),
settings as (                      -- this database's role setting wins over the all-databases one
  select distinct on (c.oid, pg_catalog.split_part(cfg, '=', 1))
         c.oid, pg_catalog.split_part(cfg, '=', 1) as name,
         pg_catalog.substr(cfg, pg_catalog.strpos(cfg, '=') + 1) as value
  from checked c
  join pg_catalog.pg_db_role_setting s on s.setrole = c.oid
   and s.setdatabase in (0, (select d.oid from pg_catalog.pg_database d
                              where d.datname = pg_catalog.current_database()))
  cross join lateral pg_catalog.unnest(s.setconfig) cfg
  order by c.oid, pg_catalog.split_part(cfg, '=', 1), s.setdatabase desc
),
wanted (name, good, suggested) as (
  values ('statement_timeout', 'nonzero', '15s'),
         ('lock_timeout', 'nonzero', '5s'),
         ('idle_in_transaction_session_timeout', 'nonzero', '30s'),
         ('log_parameter_max_length', 'zero', '0'),
         ('log_parameter_max_length_on_error', 'zero', '0')
),
missing as (
  select c.rolname, w.name, w.suggested, s.value
  from checked c
  cross join wanted w
  left join settings s on s.oid = c.oid and s.name = w.name
  where s.value is null
     or (w.good = 'nonzero' and s.value ~ '^0+[a-z]*$')
     or (w.good = 'zero' and s.value <> '0')
)
select 'login_role_without_timeouts'::text as lint,
       pg_catalog.quote_ident(m.rolname) as object,
       pg_catalog.format('missing or off: %s. A client holding a lock stalls its org''s calls '
                         'without limit, or statement logging writes session secrets to the log',
                         pg_catalog.string_agg(pg_catalog.format('%s%s', m.name,
                           case when m.value is null then '' else ' = ' || m.value end),
                           ', ' order by m.name)) as why,
       pg_catalog.string_agg(pg_catalog.format('alter role %I set %s = %L;', m.rolname, m.name,
                                               m.suggested), ' ' order by m.name) as fix
from missing m
group by m.rolname
order by 2
