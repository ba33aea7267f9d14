-- 30_tables/20_sessions.sql: live agent sessions and their chat history.
--
-- A session binds (org, operator, connector, customer, scopes) for a short time. The database
-- keeps only the sha256 of the session's random secret: holding the mediator's credential and
-- reading every table would still not yield a secret that unlocks a tenant's rows.

set local role tenantgate_owner;

create table tenantgate.sessions (
  org_id        uuid        not null,
  session_id    uuid        not null default pg_catalog.gen_random_uuid(),
  operator_id   uuid        not null,
  connector_id  uuid        not null,
  customer_id   uuid        not null,
  scopes        text[]      not null default '{}',
  secret_hash   bytea       not null check (pg_catalog.length(secret_hash) = 32),
  created_at    timestamptz not null default pg_catalog.now(),
  expires_at    timestamptz not null,
  ended_at      timestamptz,
  primary key (org_id, session_id),
  foreign key (org_id, operator_id) references tenantgate.operators (org_id, operator_id),
  foreign key (org_id, customer_id) references tenantgate.customer_accounts (org_id, customer_id),
  foreign key (org_id, connector_id) references tenantgate.connectors (org_id, connector_id),
  check (expires_at > created_at)
);
-- The trust check's lookup: org from the verified token, then the secret's hash.
create unique index sessions_secret_key on tenantgate.sessions (org_id, secret_hash);
-- purge_sessions() scans by expiry.
create index sessions_expiry_idx on tenantgate.sessions (org_id, expires_at);
comment on table tenantgate.sessions is
  'Short-lived agent sessions. Only the sha256 of the session secret is stored.';
comment on column tenantgate.sessions.secret_hash is
  'sha256 of the random session secret carried in the token; the secret itself is never stored.';

create table tenantgate.session_messages (
  org_id      uuid        not null,
  session_id  uuid        not null,
  message_id  bigint      generated always as identity,
  role        text        not null check (role in ('user', 'assistant', 'tool', 'system')),
  content     text        not null check (pg_catalog.length(content) <= 65536),
  created_at  timestamptz not null default pg_catalog.now(),
  expires_at  timestamptz not null default (pg_catalog.now() + interval '1 day'),
  primary key (org_id, session_id, message_id),
  foreign key (org_id, session_id) references tenantgate.sessions (org_id, session_id)
    on delete cascade
);
create index session_messages_expiry_idx on tenantgate.session_messages (org_id, expires_at);
comment on table tenantgate.session_messages is
  'Chat history of one session. Visible only to that live session; deleted when it ends, '
  'expires (purge_sessions) or passes its own expires_at.';
