-- 80_mediator/40_gate.sql: admit one tool call -- rate limit, then credits -- in one statement,
-- so the mediator can pipeline it with the read and the audit row (one round trip).
--
-- Both refusals raise (TG429 rate limited, TG402 not enough credits): the caller's transaction
-- aborts, the template and its audit row queued behind this statement never run, and nothing is
-- charged. The mediator then rolls back and audits the refusal in a fresh transaction.

set local role tenantgate_owner;

create function tenantgate.gate_admit(
  p_request_id   text,
  p_tool_name    text,
  p_credit_cost  integer,
  p_burst        integer,
  p_per_second   double precision,
  p_take_rate    boolean
)
returns table (balance bigint, replayed boolean)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_spend record;
begin
  if not exists (select 1 from tenantgate.session_context()) then
    raise exception using errcode = '42501',
      message = 'tenantgate: no verified session in this transaction';
  end if;
  if p_take_rate then
    perform tenantgate.rate_take(p_tool_name, p_burst, p_per_second);
  end if;
  if coalesce(p_credit_cost, 0) <= 0 then
    return query select null::bigint, false;
    return;
  end if;
  select s.charged, s.replayed, s.balance into v_spend
    from tenantgate.spend_credits(p_request_id, p_credit_cost, p_tool_name) s;
  if not v_spend.charged then
    raise exception using errcode = 'TG402', message = 'tenantgate: not enough credits';
  end if;
  return query select v_spend.balance, v_spend.replayed;
end
$$;
comment on function tenantgate.gate_admit(text, text, integer, integer, double precision, boolean) is
  'Rate limit (TG429) then idempotent credit spend (TG402) for one tool call of the verified '
  'session; returns the balance after the charge.';
