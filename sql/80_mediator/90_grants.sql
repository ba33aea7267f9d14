-- 80_mediator/90_grants.sql: who may call the mediator's functions. Nothing for PUBLIC.

set local role tenantgate_owner;

revoke execute on function
  tenantgate.rate_take_for(uuid, uuid, text, integer, double precision),
  tenantgate.rate_take(text, integer, double precision),
  tenantgate.approval_take(text, bytea, jsonb),
  tenantgate.approval_use(uuid),
  tenantgate.approval_answer(uuid, boolean),
  tenantgate.approval_decide(uuid, uuid, uuid, boolean),
  tenantgate.gate_admit(uuid, uuid, text, text, text, integer, integer, double precision, boolean,
    jsonb)
  from public;

grant execute on function
  tenantgate.rate_take(text, integer, double precision),
  tenantgate.approval_take(text, bytea, jsonb),
  tenantgate.approval_use(uuid),
  tenantgate.approval_answer(uuid, boolean),
  tenantgate.gate_admit(uuid, uuid, text, text, text, integer, integer, double precision, boolean,
    jsonb)
  to tenantgate_mediator;
grant select on tenantgate.column_classes, tenantgate.scope_classes to tenantgate_mediator;

grant execute on function tenantgate.approval_decide(uuid, uuid, uuid, boolean)
  to tenantgate_admin;
grant select, insert, update, delete on tenantgate.column_classes, tenantgate.scope_classes
  to tenantgate_admin;
grant select on tenantgate.approvals, tenantgate.rate_buckets to tenantgate_admin;
