-- 89_pgcpu/10_audit.sql: the audit append of sql/89_audit_scale/20_seal.sql in fewer statements.
--
--   * audit_canonical loses its SET clause, so the planner inlines it (one expression, no
--     function call per row). Its body names pg_catalog for every function and operator, so the
--     text it makes does not depend on the caller's search_path; the text is the same as before,
--     byte for byte (the chain of before verifies: tests/sql/test_audit.py, test_audit_scale.py).
--   * audit_append_row takes the org's head (if free) and learns whether rows wait to be sealed
--     in one statement instead of two, and that check is planned once: as a separate EXISTS it
--     was planned again on every call. Every path (no head yet, rows pending, the head busy, a
--     missing partition) does what it did before. (One statement for lock, insert and head
--     update was tried too: on Citus that INSERT ... SELECT is no single-shard statement and
--     opened two connections per call on the org's worker.)

set local role tenantgate_owner;

create or replace function tenantgate.audit_canonical(
  p_org_id uuid, p_seq bigint, p_occurred_at timestamptz, p_session_id uuid, p_operator_id uuid,
  p_customer_id uuid, p_request_id text, p_tool_name text, p_decision text, p_detail jsonb
)
returns text
language sql
stable  -- jsonb_build_object is stable: an immutable body may not call it, and only then it inlines
as $$  -- no SET clause, so it inlines; every function and operator named is pg_catalog's
  -- (the parser turns extract into pg_catalog.extract)
  select pg_catalog.jsonb_build_object(
    'org_id', p_org_id, 'seq', p_seq,
    'at_us', (extract(epoch from p_occurred_at) operator(pg_catalog.*) 1000000)::bigint,
    'session_id', p_session_id, 'operator_id', p_operator_id, 'customer_id', p_customer_id,
    'request_id', p_request_id, 'tool', p_tool_name, 'decision', p_decision,
    'detail', p_detail)::text
$$;

create or replace function tenantgate.audit_append_row(
  p_org_id uuid, p_session_id uuid, p_operator_id uuid, p_customer_id uuid,
  p_request_id text, p_tool_name text, p_decision text, p_detail jsonb
)
returns table (seq bigint, row_hash bytea)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_entry  bigint := pg_catalog.nextval('tenantgate.audit_entry_seq');
  v_at     timestamptz := pg_catalog.clock_timestamp();
  v_detail jsonb := coalesce(p_detail, '{}'::jsonb);
  v_head   record;
  v_seq    bigint;
  v_hash   bytea;
begin
  begin
    -- The head if it is free (SKIP LOCKED), and in the same statement whether rows other calls
    -- left waiting are after it (only those after the last entry sealed: an older one
    -- committed late is `audit seal`'s). One single-shard statement on Citus, as before.
    select h.seq, h.head_hash, h.sealed_at, h.sealed_entry,
           exists (select 1 from tenantgate.audit_pending p
                    where p.org_id = p_org_id and p.entry_id > h.sealed_entry) as waiting
      into v_head
      from tenantgate.audit_heads h where h.org_id = p_org_id for update skip locked;
    if not found and not exists (select 1 from tenantgate.audit_heads h
                                  where h.org_id = p_org_id) then
      insert into tenantgate.audit_heads (org_id, seq, head_hash)
      values (p_org_id, 0, pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'))
      on conflict (org_id) do nothing;
      select h.seq, h.head_hash, h.sealed_at, h.sealed_entry, false as waiting into v_head
        from tenantgate.audit_heads h where h.org_id = p_org_id for update skip locked;
    end if;
    if v_head.seq is not null then
      -- The head is ours until commit. Rows waiting go first.
      if v_head.waiting then
        perform tenantgate.audit_seal_org(p_org_id, 256, true, v_head.sealed_entry + 1);
        select h.seq, h.head_hash, h.sealed_at, h.sealed_entry, false as waiting into v_head
          from tenantgate.audit_heads h where h.org_id = p_org_id;
      end if;
      v_seq := v_head.seq + 1;
      v_hash := pg_catalog.sha256(v_head.head_hash operator(pg_catalog.||) pg_catalog.convert_to(
        tenantgate.audit_canonical(p_org_id, v_seq, v_at, p_session_id, p_operator_id,
                                   p_customer_id, p_request_id, p_tool_name, p_decision,
                                   v_detail), 'UTF8'));
      insert into tenantgate.audit_log
        (org_id, seq, occurred_at, session_id, operator_id, customer_id, request_id, tool_name,
         decision, detail, prev_hash, row_hash, entry_id, sealed_at)
      values (p_org_id, v_seq, v_at, p_session_id, p_operator_id, p_customer_id, p_request_id,
              p_tool_name, p_decision, v_detail, v_head.head_hash, v_hash, v_entry,
              greatest(v_at, v_head.sealed_at));
      update tenantgate.audit_heads h
         set seq = v_seq, head_hash = v_hash, sealed_at = greatest(v_at, v_head.sealed_at),
             sealed_entry = greatest(h.sealed_entry, v_entry)
       where h.org_id = p_org_id;
      seq := v_entry;
      row_hash := v_hash;
      return next;
      return;
    end if;
  exception when others then
    -- No partition for this month (nobody ran `tenantgate audit seal` for two months), or any
    -- other failure to chain now: the row is still written, pending, and the seal reports why.
    v_hash := null;
  end;
  insert into tenantgate.audit_pending
    (org_id, entry_id, occurred_at, session_id, operator_id, customer_id, request_id,
     tool_name, decision, detail)
  values (p_org_id, v_entry, v_at, p_session_id, p_operator_id, p_customer_id, p_request_id,
          p_tool_name, p_decision, v_detail);
  seq := v_entry;
  row_hash := null;
  return next;
end
$$;
