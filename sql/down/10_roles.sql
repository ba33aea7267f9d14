-- down/10_roles.sql: drop the roles, unless another database of this cluster still uses them.
--
-- Roles are cluster-wide. If another database still holds tenantgate objects, the drop would fail;
-- we keep the role then and say so, rather than break that database.

do $roles$
declare
  r text;
begin
  foreach r in array array['tenantgate_admin', 'tenantgate_session_manager',
                           'tenantgate_mediator', 'tenantgate_owner'] loop
    if exists (select 1 from pg_catalog.pg_roles where rolname = r) then
      begin
        execute pg_catalog.format('drop role %I', r);
      exception when dependent_objects_still_exist then
        raise notice 'tenantgate: role % kept: another database of this cluster still uses it', r;
      end;
    end if;
  end loop;
end
$roles$;
