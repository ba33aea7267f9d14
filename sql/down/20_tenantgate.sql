-- down/20_tenantgate.sql: remove the tenantgate schema, everything in it, and the owner's
-- CREATE right on this database. Tables you enrolled keep RLS enabled and forced but lose their
-- tenantgate policies (they depend on tenantgate functions): run unenrol_table first if you want
-- a clean hand-over, and disable RLS yourself afterwards.

drop schema if exists tenantgate cascade;

do $revoke$
begin
  execute pg_catalog.format('revoke create on database %I from tenantgate_owner',
                            pg_catalog.current_database());
end
$revoke$;
