-- 88_gate/90_grants.sql: the mediator keeps two entry points and loses everything else that
-- touches tenant data or takes a cost, an amount, a limit, an audit decision or an approval.

set local role tenantgate_owner;

-- The per-call pieces the mediator used to assemble itself are gone: the gate does them.
drop function if exists tenantgate.gate_admit(uuid, uuid, text, text, text, integer, integer,
                                              double precision, boolean, jsonb);
drop function if exists tenantgate.rate_take(text, integer, double precision);
drop function if exists tenantgate.approval_take(text, bytea, jsonb);
drop function if exists tenantgate.approval_use(uuid);
-- Replaced by tenantgate.rate_try (40_call.sql), which also counts refusals.
drop function if exists tenantgate.rate_take_for(uuid, uuid, text, integer, double precision);

-- Still in the database for the gate, the CLI and the tests, no longer the mediator's.
revoke execute on function
  tenantgate.trust_check(uuid, uuid, uuid, text),
  tenantgate.spend_credits(text, bigint, text),
  tenantgate.append_audit(text, text, text, jsonb),
  tenantgate.audit_denial(uuid, text, text, text, jsonb),
  tenantgate.current_upstream_credential()
  from tenantgate_mediator;

revoke execute on all functions in schema tenantgate from public;

grant execute on function
  tenantgate.call_tool(uuid, uuid, text, text, text, jsonb),
  tenantgate.list_tools(uuid, uuid, text),
  tenantgate.approval_answer(uuid, uuid, text, uuid, boolean),
  tenantgate.upstream_outcome(uuid, uuid, text, bigint, integer, bigint, integer, text)
  to tenantgate_mediator;
grant select on tenantgate.tool_definitions to tenantgate_mediator;
-- The gate shapes results (SQL tools) and hands the HTTP half the session's ceiling: the mediator
-- no longer reads the data classes itself.
revoke select on tenantgate.column_classes, tenantgate.scope_classes from tenantgate_mediator;
drop policy if exists mediator_read on tenantgate.column_classes;
drop policy if exists mediator_read on tenantgate.scope_classes;

grant select on tenantgate.tool_definitions, tenantgate.tool_applications,
  tenantgate.tool_requests, tenantgate.denials, tenantgate.denial_buckets,
  tenantgate.upstream_admissions
  to tenantgate_admin;
grant execute on function tenantgate.approval_decide(uuid, uuid, uuid, boolean)
  to tenantgate_admin;
-- `tools enable` copies a definition's defaults into the catalog.
grant update (approval, rate_burst, rate_per_second) on tenantgate.tools to tenantgate_admin;
