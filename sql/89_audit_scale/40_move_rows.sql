-- 89_audit_scale/40_move_rows.sql: the rows of before 0010 move into the partitioned audit_log.
--
-- Their sealed_at is the latest occurred_at so far along their chain (it never decreases, as
-- sealing guarantees from now on); hashes and seqs are copied unchanged.

set local role tenantgate_owner;

select tenantgate.audit_partitions_ensure(
  coalesce((select pg_catalog.min(u.occurred_at) from tenantgate.audit_log_unpartitioned u),
           pg_catalog.now()),
  pg_catalog.now() + interval '2 months');

insert into tenantgate.audit_log
  (org_id, seq, occurred_at, session_id, operator_id, customer_id, request_id, tool_name,
   decision, detail, prev_hash, row_hash, entry_id, sealed_at)
select u.org_id, u.seq, u.occurred_at, u.session_id, u.operator_id, u.customer_id, u.request_id,
       u.tool_name, u.decision, u.detail, u.prev_hash, u.row_hash, null,
       pg_catalog.max(u.occurred_at) over (partition by u.org_id order by u.seq)
  from tenantgate.audit_log_unpartitioned u;

update tenantgate.audit_heads h set sealed_at = l.sealed_at
  from (select distinct on (a.org_id) a.org_id, a.sealed_at from tenantgate.audit_log a
         order by a.org_id, a.seq desc) l
 where l.org_id = h.org_id;

drop table tenantgate.audit_log_unpartitioned;
