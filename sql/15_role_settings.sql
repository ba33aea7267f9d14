-- 15_role_settings.sql: time limits and log hygiene for the two login roles of the request path.
--
-- Role settings are cluster-wide (`alter role ... set`, no `in database`), like the roles.
--
--   statement_timeout                     15s  a runaway statement is cancelled, not left running
--   lock_timeout                          5s   a call waiting on a row lock another session holds
--                                              (an org's audit chain head, its credit account)
--                                              fails with a clear error instead of hanging
--   idle_in_transaction_session_timeout   30s  a client that opens a transaction and goes quiet
--                                              (holding those locks) is disconnected
--   log_parameter_max_length              0    bind parameters of logged statements are not written
--                                              to the server log (log_statement, duration logging)
--   log_parameter_max_length_on_error     0    nor those of a statement that failed
--
-- Why the last two: the mediator passes a session secret as a bind parameter on every call. With
-- `log_statement = all` or `log_min_duration_statement = 0` PostgreSQL logs bind parameters in full
-- by default, so whoever reads the server log could replay any live session. A role setting wins
-- over the database's and the server's (postgresql.conf, ALTER SYSTEM): a DBA who turns statement
-- logging on to debug does not turn secrets on with it.
--
-- Privileges (checked on PostgreSQL 15 and 18): log_parameter_max_length is a superuser setting,
-- so `alter role ... set log_parameter_max_length` needs a superuser, or on PostgreSQL 15 and later
-- a role given `grant set on parameter log_parameter_max_length to <role>` that may alter these
-- roles. The other four are user settings. Run this as the DBA who runs the migrations.
--
-- What these settings do NOT do: a session of these roles may still change the user settings for
-- itself (`set lock_timeout = 0`). They protect the other callers from a stuck or slow client, not
-- from a hostile holder of the credential; the gate's own functions must bound their waits too.

do $settings$
declare
  v_role text;
begin
  foreach v_role in array array['tenantgate_mediator', 'tenantgate_session_manager'] loop
    execute pg_catalog.format('alter role %I set statement_timeout = %L', v_role, '15s');
    execute pg_catalog.format('alter role %I set lock_timeout = %L', v_role, '5s');
    execute pg_catalog.format('alter role %I set idle_in_transaction_session_timeout = %L',
                              v_role, '30s');
    execute pg_catalog.format('alter role %I set log_parameter_max_length_on_error = 0', v_role);
    begin
      execute pg_catalog.format('alter role %I set log_parameter_max_length = 0', v_role);
    exception when insufficient_privilege then
      raise exception using errcode = '42501',
        message = pg_catalog.format(
          'tenantgate: %s may not set log_parameter_max_length for role %s', current_user, v_role),
        hint = 'Run the migration as a superuser, or first: grant set on parameter '
               'log_parameter_max_length to ' || pg_catalog.quote_ident(current_user) || ';';
    end;
  end loop;
end
$settings$;
