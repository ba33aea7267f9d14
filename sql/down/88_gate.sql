-- down/88_gate.sql: remove what sql/88_gate added and give the mediator back what it had.

set local role tenantgate_owner;

drop function if exists tenantgate.call_tool(uuid, uuid, text, text, text, jsonb);
drop function if exists tenantgate.list_tools(uuid, uuid, text);
drop function if exists tenantgate.upstream_outcome(uuid, uuid, text, bigint, integer, bigint, integer, text);
drop function if exists tenantgate.approval_answer(uuid, uuid, text, uuid, boolean);
drop function if exists tenantgate.gate_session(uuid, uuid, text);
drop function if exists tenantgate.gate_refuse(uuid, uuid, uuid, uuid, text, text, text, jsonb, jsonb);
drop function if exists tenantgate.fit_row(jsonb, integer);
drop function if exists tenantgate.record_denial(uuid, text);
drop function if exists tenantgate.denial_take(uuid, integer, double precision);
drop function if exists tenantgate.rate_try(uuid, uuid, text, integer, double precision);
drop function if exists tenantgate.tool_column_plan(jsonb, integer);
drop function if exists tenantgate.scope_ceiling(text[]);
drop function if exists tenantgate.mask_row(jsonb, text[]);
drop function if exists tenantgate.mask_value(jsonb);
drop function if exists tenantgate.tool_arguments(jsonb, jsonb);
drop table if exists tenantgate.upstream_admissions;
drop table if exists tenantgate.denial_buckets;
drop table if exists tenantgate.denials;
drop table if exists tenantgate.tool_requests;
alter table tenantgate.rate_buckets drop column if exists refused, drop column if exists reported,
  drop column if exists pending;
alter table tenantgate.tools drop constraint if exists tools_defined_fkey;
alter table tenantgate.tools drop column if exists approval, drop column if exists rate_burst,
  drop column if exists rate_per_second;
alter table tenantgate.approvals drop column if exists preview, drop column if exists expires_at;
drop table if exists tenantgate.tool_applications;
drop table if exists tenantgate.tool_definitions;

grant execute on function
  tenantgate.trust_check(uuid, uuid, uuid, text),
  tenantgate.spend_credits(text, bigint, text),
  tenantgate.append_audit(text, text, text, jsonb),
  tenantgate.audit_denial(uuid, text, text, text, jsonb),
  tenantgate.current_upstream_credential()
  to tenantgate_mediator;

grant select on tenantgate.column_classes, tenantgate.scope_classes to tenantgate_mediator;
create policy mediator_read on tenantgate.column_classes for select to tenantgate_mediator
  using (true);
create policy mediator_read on tenantgate.scope_classes for select to tenantgate_mediator
  using (true);

reset role;
-- The generated tool functions go with their schema.
drop schema if exists tenantgate_tools cascade;
do $moveback$
declare
  r record;
begin
  for r in select p.polrelid::regclass as tbl,
                  pg_catalog.replace(pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                                     'tenantgate.gate_tenant()', 'tenantgate.current_tenant()') as qual
             from pg_catalog.pg_policy p
            where p.polname = 'tenantgate_isolation'
  loop
    execute pg_catalog.format(
      'alter policy tenantgate_isolation on %s to tenantgate_mediator using (%s) with check (%s)',
      r.tbl, r.qual, r.qual);
    execute pg_catalog.format('revoke all on %s from tenantgate_tool', r.tbl);
    execute pg_catalog.format('grant select on %s to tenantgate_mediator', r.tbl);
  end loop;
end
$moveback$;

drop function if exists tenantgate.gate_tenant();

do $roles$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'tenantgate_tool') then
    begin
      drop role tenantgate_tool;
    exception when dependent_objects_still_exist then
      raise notice 'tenantgate: role tenantgate_tool kept: another database of this cluster still uses it';
    end;
  end if;
end
$roles$;
