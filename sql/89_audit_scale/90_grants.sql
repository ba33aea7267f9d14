-- 89_audit_scale/90_grants.sql: who reaches the audit log's new pieces.
--
-- The admin reads the log, the pending rows and the cuts, verifies, and runs the sealer (sealing
-- orders and hashes rows already written; it cannot choose or change a row), which creates the
-- empty partitions of the months ahead. Nobody but the owner (a DBA) retires partitions. The
-- mediator gets nothing here: it reaches the log only through the gate's entry points.

set local role tenantgate_owner;

revoke execute on all functions in schema tenantgate from public;
revoke all on sequence tenantgate.audit_entry_seq from public;

grant select on tenantgate.audit_log, tenantgate.audit_pending, tenantgate.audit_cuts
  to tenantgate_admin;
grant execute on function
  tenantgate.audit_verify_from(uuid, bigint, bytea),
  tenantgate.audit_orgs(),
  tenantgate.audit_seal(uuid, integer),
  tenantgate.audit_pending_orgs(),
  tenantgate.audit_partitions_ensure(timestamptz, timestamptz)  -- empty months ahead, no rows
  to tenantgate_admin;
