-- 80_mediator/30_approvals.sql: a human approves a side-effecting tool call before it runs, once.
--
-- An approval is bound to the session, the tool and the sha256 of the exact (validated) arguments:
-- approving "refund 10 EUR on invoice 7" does not approve "refund 1000 EUR on invoice 7".
--   pending   asked, not answered yet
--   approved  answered yes; the next identical call of the same session consumes it
--   used      consumed by the call that ran (it runs once)
--   denied    answered no; the call never runs on it
-- Two ways to answer: the session's own operator through the MCP host (elicitation,
-- approval_answer, mediator role) or any active operator of the same org out of band
-- (approval_decide, admin role: Python API and CLI).

set local role tenantgate_owner;

create table tenantgate.approvals (
  org_id       uuid        not null,
  approval_id  uuid        not null default pg_catalog.gen_random_uuid(),
  session_id   uuid        not null,
  operator_id  uuid        not null,
  customer_id  uuid        not null,
  tool_name    text        not null,
  args_hash    bytea       not null check (pg_catalog.length(args_hash) = 32),
  arguments    jsonb       not null default '{}',
  status       text        not null default 'pending'
                           check (status in ('pending', 'approved', 'denied', 'used')),
  created_at   timestamptz not null default pg_catalog.now(),
  decided_at   timestamptz,
  decided_by   uuid,
  decided_via  text        check (decided_via in ('operator', 'elicitation')),
  used_at      timestamptz,
  primary key (org_id, approval_id),
  foreign key (org_id, session_id) references tenantgate.sessions (org_id, session_id)
    on delete cascade
);
create index approvals_call_idx
  on tenantgate.approvals (org_id, session_id, tool_name, args_hash, status);
comment on column tenantgate.approvals.arguments is
  'The validated arguments, shown to the approver; args_hash (sha256 of their canonical JSON) binds.';
comment on table tenantgate.approvals is
  'Human approvals of side-effecting tool calls, bound to session, tool and argument hash.';

alter table tenantgate.approvals enable row level security;
alter table tenantgate.approvals force row level security;
create policy owner_all on tenantgate.approvals for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.approvals for select to tenantgate_admin using (true);

-- The mediator's step before a side effect: consume an approval, or find or open a pending one.
create function tenantgate.approval_take(p_tool_name text, p_args_hash bytea, p_arguments jsonb)
returns table (status text, approval_id uuid)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ctx record;
  v_id  uuid;
begin
  select c.org_id, c.session_id, c.operator_id, c.customer_id into v_ctx
    from tenantgate.verified_context() c;
  select x.approval_id into v_id from tenantgate.approvals x
   where x.org_id = v_ctx.org_id and x.session_id = v_ctx.session_id
     and x.tool_name = p_tool_name and x.args_hash = p_args_hash and x.status = 'approved'
   order by x.decided_at
   limit 1;
  if found then
    return query select 'approved'::text, v_id;
    return;
  end if;
  select x.approval_id into v_id from tenantgate.approvals x
   where x.org_id = v_ctx.org_id and x.session_id = v_ctx.session_id
     and x.tool_name = p_tool_name and x.args_hash = p_args_hash and x.status = 'pending'
   order by x.created_at desc
   limit 1;
  if not found then
    insert into tenantgate.approvals (org_id, session_id, operator_id, customer_id, tool_name,
                                      args_hash, arguments)
    values (v_ctx.org_id, v_ctx.session_id, v_ctx.operator_id, v_ctx.customer_id, p_tool_name,
            p_args_hash, coalesce(p_arguments, '{}'::jsonb))
    returning tenantgate.approvals.approval_id into v_id;
  end if;
  return query select 'pending'::text, v_id;
end
$$;
comment on function tenantgate.approval_take(text, bytea, jsonb) is
  'Find an approved approval for this session, tool and argument hash (status approved; '
  'approval_use consumes it), or return the pending one, opening it if needed (status pending).';

-- Consume an approval in the transaction that performs the side effect: if that transaction
-- rolls back (no credit, nothing to change, a crash), the approval stays approved.
create function tenantgate.approval_use(p_approval_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ctx record;
begin
  select c.org_id, c.session_id into v_ctx from tenantgate.verified_context() c;
  update tenantgate.approvals a
     set status = 'used', used_at = pg_catalog.now()
   where a.org_id = v_ctx.org_id and a.session_id = v_ctx.session_id
     and a.approval_id = p_approval_id and a.status = 'approved';
  if not found then
    raise exception using errcode = 'TG409', message = 'tenantgate: approval already used';
  end if;
end
$$;
comment on function tenantgate.approval_use(uuid) is
  'Mark an approved approval of the verified session used (once); SQLSTATE TG409 otherwise.';

-- The session's own operator answers through the MCP host (elicitation).
create function tenantgate.approval_answer(p_approval_id uuid, p_approve boolean)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ctx record;
begin
  select c.org_id, c.session_id, c.operator_id into v_ctx from tenantgate.verified_context() c;
  update tenantgate.approvals a
     set status = case when p_approve then 'approved' else 'denied' end,
         decided_at = pg_catalog.now(), decided_by = v_ctx.operator_id,
         decided_via = 'elicitation'
   where a.org_id = v_ctx.org_id and a.session_id = v_ctx.session_id
     and a.approval_id = p_approval_id and a.status = 'pending';
  return found;
end
$$;
comment on function tenantgate.approval_answer(uuid, boolean) is
  'Answer a pending approval of the verified session (through the host); false if none.';

-- Any active operator of the same org answers out of band (Python API, CLI).
create function tenantgate.approval_decide(p_org_id uuid, p_approval_id uuid,
                                           p_operator_id uuid, p_approve boolean)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_status text;
begin
  if not exists (select 1 from tenantgate.operators o join tenantgate.orgs g using (org_id)
                  where o.org_id = p_org_id and o.operator_id = p_operator_id
                    and o.status = 'active' and g.status = 'active') then
    raise exception using errcode = 'P0002', message = 'tenantgate: not found or inactive';
  end if;
  update tenantgate.approvals a
     set status = case when p_approve then 'approved' else 'denied' end,
         decided_at = pg_catalog.now(), decided_by = p_operator_id, decided_via = 'operator'
   where a.org_id = p_org_id and a.approval_id = p_approval_id and a.status = 'pending'
  returning a.status into v_status;
  if not found then
    raise exception using errcode = 'P0002', message = 'tenantgate: no such pending approval';
  end if;
  return v_status;
end
$$;
comment on function tenantgate.approval_decide(uuid, uuid, uuid, boolean) is
  'An active operator of the same org approves or denies a pending approval; returns its status.';
