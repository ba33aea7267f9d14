-- down/15_role_settings.sql: remove the settings that sql/15_role_settings.sql gave the roles.

do $settings$
declare
  v_role text;
  v_name text;
begin
  foreach v_role in array array['tenantgate_mediator', 'tenantgate_session_manager'] loop
    foreach v_name in array array['statement_timeout', 'lock_timeout',
                                  'idle_in_transaction_session_timeout',
                                  'log_parameter_max_length', 'log_parameter_max_length_on_error'] loop
      execute pg_catalog.format('alter role %I reset %I', v_role, v_name);
    end loop;
  end loop;
end
$settings$;
