-- 30_tables/10_directory.sql: who exists. Orgs, their operators, connectors, customer accounts and
-- each connector's tool catalog.
--
-- Every key leads with org_id: a unique violation can then never reveal another org's key, and the
-- schema stays distributable by org (Citus needs the distribution column in every key).

set local role tenantgate_owner;

create table tenantgate.orgs (
  org_id      uuid        not null default pg_catalog.gen_random_uuid(),
  name        text        not null check (pg_catalog.length(name) between 1 and 200),
  status      text        not null default 'active' check (status in ('active', 'paused', 'revoked')),
  created_at  timestamptz not null default pg_catalog.now(),
  primary key (org_id)
);
create unique index orgs_name_key on tenantgate.orgs (name);
comment on table tenantgate.orgs is
  'A tenant of tenantgate: a company whose customer-success team uses the agent.';
comment on column tenantgate.orgs.status is
  'active | paused | revoked. Anything but active fails every trust check of the org on the next query.';

create table tenantgate.operators (
  org_id        uuid        not null references tenantgate.orgs (org_id),
  operator_id   uuid        not null default pg_catalog.gen_random_uuid(),
  email         text        not null check (pg_catalog.length(email) between 3 and 320),
  display_name  text        not null default '',
  status        text        not null default 'active' check (status in ('active', 'disabled')),
  created_at    timestamptz not null default pg_catalog.now(),
  primary key (org_id, operator_id)
);
create unique index operators_email_key on tenantgate.operators (org_id, email);
comment on table tenantgate.operators is
  'The people (customer-success staff) of an org on whose behalf the agent acts.';

create table tenantgate.connectors (
  org_id        uuid        not null references tenantgate.orgs (org_id),
  connector_id  uuid        not null default pg_catalog.gen_random_uuid(),
  name          text        not null check (pg_catalog.length(name) between 1 and 200),
  base_url      text        check (base_url is null or base_url ~ '^https?://'),
  auth_header   text        not null default 'Authorization'
                            check (auth_header ~ '^[A-Za-z0-9-]{1,64}$'),
  status        text        not null default 'active' check (status in ('active', 'paused', 'revoked')),
  created_at    timestamptz not null default pg_catalog.now(),
  primary key (org_id, connector_id)
);
create unique index connectors_name_key on tenantgate.connectors (org_id, name);
comment on table tenantgate.connectors is
  'An org''s integration with one upstream system (its product database or an HTTP API).';
comment on column tenantgate.connectors.auth_header is
  'Header the decrypted customer key is injected into for HTTP-backed tools.';

create table tenantgate.customer_accounts (
  org_id        uuid        not null,
  customer_id   uuid        not null default pg_catalog.gen_random_uuid(),
  connector_id  uuid        not null,
  name          text        not null check (pg_catalog.length(name) between 1 and 200),
  external_ref  text,
  status        text        not null default 'active' check (status in ('active', 'paused', 'revoked')),
  created_at    timestamptz not null default pg_catalog.now(),
  primary key (org_id, customer_id),
  foreign key (org_id, connector_id) references tenantgate.connectors (org_id, connector_id)
);
create index customer_accounts_connector_idx
  on tenantgate.customer_accounts (org_id, connector_id);
comment on table tenantgate.customer_accounts is
  'A customer of an org, reached through one connector. The agent acts for one at a time.';

create table tenantgate.tools (
  org_id          uuid    not null,
  connector_id    uuid    not null,
  tool_name       text    not null check (tool_name ~ '^[a-z][a-z0-9_]{0,63}$'),
  required_scope  text    not null check (required_scope ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  side_effect     boolean not null default false,
  credit_cost     integer not null default 1 check (credit_cost >= 0),
  enabled         boolean not null default true,
  description     text    not null default '',
  primary key (org_id, connector_id, tool_name),
  foreign key (org_id, connector_id) references tenantgate.connectors (org_id, connector_id)
);
comment on table tenantgate.tools is
  'The per-connector tool catalog. A session sees exactly the enabled tools of its connector.';
comment on column tenantgate.tools.side_effect is
  'True for tools that change data: they need a human approval before they run.';
