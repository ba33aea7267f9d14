-- 80_mediator/40_gate.sql: admit one tool call -- rate limit, credits, and its audit row -- in
-- one statement, so the mediator sends it pipelined with the read and the commit: one round trip.
--
-- Both refusals raise (TG429 rate limited, TG402 not enough credits): the caller's transaction
-- aborts, the template queued behind this statement never runs, nothing is charged and the
-- 'allowed' audit row is rolled back with it. The mediator then rolls back and audits the refusal
-- in a fresh transaction. The audit row is written here, before the read, but in the same
-- transaction: it commits exactly when the read's result does, so no data leaves without it.
-- The verified context is evaluated once here; rate limit, spend and audit all reuse it.

set local role tenantgate_owner;

create function tenantgate.gate_admit(
  p_org_id         uuid,
  p_customer_id    uuid,
  p_session_secret text,
  p_request_id   text,
  p_tool_name    text,
  p_credit_cost  integer,
  p_burst        integer,
  p_per_second   double precision,
  p_take_rate    boolean,
  p_detail       jsonb
)
returns table (balance bigint, replayed boolean, audit_seq bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ctx     record;
  v_spend   record;
  v_balance bigint;
  v_replay  boolean := false;
  v_seq     bigint;
begin
  -- The transaction-local context (design.md), set here to save the mediator a statement: it
  -- outlives this call until the transaction ends, so the template after it reads under it.
  perform pg_catalog.set_config('app.org_id', p_org_id::text, true),
          pg_catalog.set_config('app.customer_id', p_customer_id::text, true),
          pg_catalog.set_config('app.session_secret', p_session_secret, true);
  select c.org_id, c.session_id, c.operator_id, c.customer_id into v_ctx
    from tenantgate.verified_context() c;
  if p_take_rate then
    perform tenantgate.rate_take_for(v_ctx.org_id, v_ctx.operator_id, p_tool_name, p_burst,
                                     p_per_second);
  end if;
  if coalesce(p_credit_cost, 0) > 0 then
    select s.charged, s.replayed, s.balance into v_spend
      from tenantgate.spend_credits_for(v_ctx.org_id, v_ctx.session_id, p_request_id,
                                        p_credit_cost, p_tool_name) s;
    if not v_spend.charged then
      raise exception using errcode = 'TG402', message = 'tenantgate: not enough credits';
    end if;
    v_balance := v_spend.balance;
    v_replay := v_spend.replayed;
  end if;
  select a.seq into v_seq
    from tenantgate.audit_append_row(v_ctx.org_id, v_ctx.session_id, v_ctx.operator_id,
                                     v_ctx.customer_id, p_request_id, p_tool_name, 'allowed',
                                     coalesce(p_detail, '{}'::jsonb)) a;
  return query select v_balance, v_replay, v_seq;
end
$$;
comment on function tenantgate.gate_admit(uuid, uuid, text, text, text, integer, integer,
                                          double precision, boolean, jsonb) is
  'Set the transaction-local context, then for one tool call of the verified session: rate limit '
  '(TG429), idempotent credit spend (TG402) and its ''allowed'' audit row, in the caller''s '
  'transaction.';
