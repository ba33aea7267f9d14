-- down/80_mediator.sql: remove what sql/80_mediator added.

set local role tenantgate_owner;

drop function if exists tenantgate.gate_admit(uuid, uuid, text, text, text, integer, integer, double precision, boolean,
    jsonb);
drop function if exists tenantgate.approval_decide(uuid, uuid, uuid, boolean);
drop function if exists tenantgate.approval_answer(uuid, boolean);
drop function if exists tenantgate.approval_use(uuid);
drop function if exists tenantgate.approval_take(text, bytea, jsonb);
drop function if exists tenantgate.rate_take(text, integer, double precision);
drop function if exists tenantgate.rate_take_for(uuid, uuid, text, integer, double precision);
drop table if exists tenantgate.approvals;
drop table if exists tenantgate.rate_buckets;
drop table if exists tenantgate.scope_classes;
drop table if exists tenantgate.column_classes;
