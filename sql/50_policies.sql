-- 50_policies.sql: row-level security on every control table, enabled and forced.
--
-- Default deny: a role with no policy on a table sees no row of it and can write none.
--   tenantgate_owner   every row: it is the identity the SECURITY DEFINER functions run as, and
--                      those functions are the gate (they check the session themselves).
--   tenantgate_admin   every row of the tables it manages (it is cross-tenant by design); the
--                      audit log, heads and ledger read-only; never the chat history.
--   tenantgate_mediator only its own live session's chat history; nothing else directly.
-- FORCE matters: without it the owner, and so every definer function, would skip RLS silently.

set local role tenantgate_owner;

do $rls$
declare
  t text;
begin
  foreach t in array array['orgs', 'operators', 'connectors', 'customer_accounts', 'tools',
                           'sessions', 'session_messages', 'credit_accounts', 'credit_ledger',
                           'customer_secrets', 'audit_log', 'audit_heads'] loop
    execute pg_catalog.format('alter table tenantgate.%I enable row level security', t);
    execute pg_catalog.format('alter table tenantgate.%I force row level security', t);
    execute pg_catalog.format(
      'create policy owner_all on tenantgate.%I for all to tenantgate_owner using (true) with check (true)', t);
  end loop;

  -- What the admin manages.
  foreach t in array array['orgs', 'operators', 'connectors', 'customer_accounts', 'tools',
                           'customer_secrets'] loop
    execute pg_catalog.format(
      'create policy admin_all on tenantgate.%I for all to tenantgate_admin using (true) with check (true)', t);
  end loop;
  -- What the admin reads.
  foreach t in array array['sessions', 'credit_accounts', 'credit_ledger', 'audit_log',
                           'audit_heads'] loop
    execute pg_catalog.format(
      'create policy admin_read on tenantgate.%I for select to tenantgate_admin using (true)', t);
  end loop;
end
$rls$;

-- The mediator reads and appends its own live session's history, nothing else, and only unexpired
-- messages. Ended or expired sessions fail session_context(), so their history is invisible at once.
create policy mediator_own_session on tenantgate.session_messages
  for all to tenantgate_mediator
  using ((org_id, session_id) = (select c.org_id, c.session_id from tenantgate.session_context() c)
         and expires_at > pg_catalog.statement_timestamp())
  with check ((org_id, session_id) = (select c.org_id, c.session_id from tenantgate.session_context() c));
comment on policy mediator_own_session on tenantgate.session_messages is
  'The mediator sees and appends only the history of the verified live session.';
