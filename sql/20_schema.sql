-- 20_schema.sql: the tenantgate schema, owned by tenantgate_owner.
--
-- From here on every object is created while acting as tenantgate_owner (`set local role`), so it
-- owns them all and nothing is owned by the migrating DBA or by a login role.

do $grant$
begin
  execute pg_catalog.format('grant create on database %I to tenantgate_owner',
                            pg_catalog.current_database());
end
$grant$;

set local role tenantgate_owner;

create schema tenantgate;
comment on schema tenantgate is
  'tenantgate control plane: tenants, sessions, credits, secrets and the audit chain. '
  'Every table has row-level security enabled and forced.';

-- Nobody creates objects in it but the owner.
revoke all on schema tenantgate from public;
