-- 10_roles.sql: the four roles tenantgate needs.
--
-- Roles are cluster-wide: run this once per cluster, as a superuser or a role with CREATEROLE.
-- Every statement is idempotent, so running it again (or for a second database) changes nothing.
-- No password is set here: the DBA sets one with `alter role ... password '...'` or maps the role
-- to an existing login with `grant tenantgate_mediator to my_login`.
--
--   tenantgate_owner            NOLOGIN. Owns every schema, table and SECURITY DEFINER function.
--                               Nobody logs in as it; the definer functions run with its rights.
--                               Subject to RLS on every table (FORCE), through explicit policies.
--   tenantgate_mediator         LOGIN, NOBYPASSRLS. The MCP mediator's credential. Owns nothing.
--                               EXECUTE on the per-turn functions (trust check, credit spend,
--                               audit append); SELECT, and what enrolment grants, on enrolled
--                               tables, filtered by RLS to the verified session; SELECT/INSERT on
--                               its own session's chat history. Alone (without a live session
--                               secret) it reads zero tenant rows.
--   tenantgate_session_manager  LOGIN, NOBYPASSRLS. The trusted product backend: EXECUTE on
--                               open_session, end_session and purge_sessions, nothing else.
--   tenantgate_admin            LOGIN, NOBYPASSRLS. The command line's management role: manages
--                               orgs, operators, connectors, customers, tools and secrets; grants
--                               credits; reads and verifies the audit log (never edits it). It is
--                               a member of tenantgate_session_manager.

do $roles$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'tenantgate_owner') then
    create role tenantgate_owner nologin nosuperuser nocreatedb nocreaterole noinherit nobypassrls;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'tenantgate_mediator') then
    create role tenantgate_mediator login nosuperuser nocreatedb nocreaterole noinherit nobypassrls;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'tenantgate_session_manager') then
    create role tenantgate_session_manager login nosuperuser nocreatedb nocreaterole noinherit
      nobypassrls;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'tenantgate_admin') then
    create role tenantgate_admin login nosuperuser nocreatedb nocreaterole inherit nobypassrls;
  end if;
end
$roles$;

-- A role created earlier by hand might have drifted: pin the attributes that matter.
alter role tenantgate_owner nologin nosuperuser nobypassrls;
alter role tenantgate_mediator nosuperuser nobypassrls;
alter role tenantgate_session_manager nosuperuser nobypassrls;
alter role tenantgate_admin nosuperuser nobypassrls;

-- The admin may do what the session manager does (the CLI opens and ends sessions).
grant tenantgate_session_manager to tenantgate_admin;

-- The role running the migrations must be able to act as the owner to create objects owned by it.
grant tenantgate_owner to current_user;
