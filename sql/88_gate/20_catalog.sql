-- 88_gate/20_catalog.sql: tools as reviewed database objects, and the state one tool call needs.
--
--   tool_definitions   one row per tool of the applied tools file: its parameters (the database
--                      validates arguments against them), its output columns' data-class sources,
--                      MCP metadata, and the catalog defaults `tools enable` copies. Global (not
--                      per org): a tool is code, reviewed once; which org may call it is the catalog.
--   tool_applications  every `tenantgate tools apply`, versioned: who, when, the file's hash.
--   tools (catalog)    gains the approval policy and the rate limit; its tool_name must be defined.
--   tool_requests      request keys bound to (session, tool, arguments hash); side effects keep
--                      their outcome so a retry answers it instead of running again.
--   denials            callers whose session could not be verified: kept outside the per-org hash
--                      chain, bounded in size, rate-limited per claimed org, no lock on any chain.

set local role tenantgate_owner;

create table tenantgate.tool_definitions (
  tool_name      text        primary key check (tool_name ~ '^[a-z][a-z0-9_]{0,63}$'),
  kind           text        not null check (kind in ('sql', 'http')),
  title          text        not null default '',
  description    text        not null check (pg_catalog.length(description) between 1 and 2000),
  access         text        not null check (access in ('read', 'write')),
  returns        text        not null check (returns in ('one', 'many')),
  parameters     jsonb       not null check (pg_catalog.jsonb_typeof(parameters) = 'array'),
  input_schema   jsonb       not null,
  output_schema  jsonb,
  annotations    jsonb       not null default '{}',
  columns        jsonb       not null default '{}',  -- output column -> 'schema.table.column'
  withheld       text[]      not null default '{}',  -- secret/unclassified: never leave (derived)
  sensitive      text[]      not null default '{}',  -- leave masked below read:pii (derived)
  has_preview    boolean     not null default false,
  http           jsonb,                               -- kind http: method, path, projection ...
  max_rows       integer     not null default 100 check (max_rows between 1 and 10000),
  max_bytes      integer     not null default 65536 check (max_bytes between 1024 and 16777216),
  default_scope  text        not null check (default_scope ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  default_cost   integer     not null default 1 check (default_cost >= 0),
  default_approval text      not null default 'none' check (default_approval in ('none', 'operator', 'host')),
  default_burst  integer     not null default 30 check (default_burst >= 1),
  default_per_second double precision not null default 10 check (default_per_second > 0),
  statement_sha256 text      not null,
  version        bigint      not null,
  applied_at     timestamptz not null default pg_catalog.now()
);
comment on table tenantgate.tool_definitions is
  'The applied tools file: one row per tool, its function being tenantgate_tools.<tool_name>.';
comment on column tenantgate.tool_definitions.columns is
  'Where each output column comes from ("schema.table.column"); its data class is looked up in '
  'column_classes at every call. An output column missing here never leaves (secret).';

create table tenantgate.tool_applications (
  version      bigint      primary key,
  applied_at   timestamptz not null default pg_catalog.now(),
  applied_by   name        not null default session_user,
  file_sha256  text        not null,
  tools        text[]      not null,
  removed      text[]      not null default '{}'
);
comment on table tenantgate.tool_applications is
  'History of `tenantgate tools apply`: each application of a tools file, versioned.';

alter table tenantgate.tool_definitions enable row level security;
alter table tenantgate.tool_definitions force row level security;
alter table tenantgate.tool_applications enable row level security;
alter table tenantgate.tool_applications force row level security;
create policy owner_all on tenantgate.tool_definitions for all to tenantgate_owner
  using (true) with check (true);
create policy owner_all on tenantgate.tool_applications for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.tool_definitions for select to tenantgate_admin using (true);
create policy admin_read on tenantgate.tool_applications for select to tenantgate_admin using (true);
-- Not tenant data: the mediator reads the input schemas to refuse bad arguments early.
create policy mediator_read on tenantgate.tool_definitions for select to tenantgate_mediator
  using (true);

-- The catalog: who approves, and the rate limit, live with the row that enables the tool.
alter table tenantgate.tools
  add column approval text not null default 'none' check (approval in ('none', 'operator', 'host')),
  add column rate_burst integer not null default 30 check (rate_burst >= 1),
  add column rate_per_second double precision not null default 10 check (rate_per_second > 0);
comment on column tenantgate.tools.approval is
  'none: runs at once; operator: a stored approval decided by another active operator of the org '
  '(four eyes); host: the session''s own operator answers through the MCP host (trusts the mediator).';
update tenantgate.tools set approval = 'operator' where side_effect;
-- Only defined tools can be enabled. NOT VALID keeps older catalog rows loadable; new rows and
-- updates are checked.
alter table tenantgate.tools
  add constraint tools_defined_fkey foreign key (tool_name)
  references tenantgate.tool_definitions (tool_name) on delete cascade not valid;

-- Approvals: a preview of the target, an expiry, and a history that outlives the session.
alter table tenantgate.approvals
  add column preview jsonb,
  add column expires_at timestamptz not null default pg_catalog.now() + interval '1 hour';
alter table tenantgate.approvals drop constraint if exists approvals_org_id_session_id_fkey;
alter table tenantgate.approvals drop constraint if exists approvals_decided_via_check;
alter table tenantgate.approvals
  add constraint approvals_decided_via_check check (decided_via in ('operator', 'elicitation', 'host'));
comment on column tenantgate.approvals.preview is
  'The target as the session sees it (the tool''s preview read), shown to the approver.';

-- Audit decisions made by the gate and by approvers.
alter table tenantgate.audit_log drop constraint if exists audit_log_decision_check;
alter table tenantgate.audit_log add constraint audit_log_decision_check check (decision in (
  'allowed', 'denied', 'error', 'approval_required', 'rate_limited', 'no_credit',
  'approved', 'approval_denied', 'replayed', 'upstream'));

-- Refusals that found the bucket empty are counted, not each written to the chain; the next
-- audit row of that operator and tool carries the count (refused - reported, kept in pending).
alter table tenantgate.rate_buckets
  add column refused bigint not null default 0,
  add column reported bigint not null default 0,
  add column pending bigint not null default 0;

create table tenantgate.tool_requests (
  org_id       uuid        not null,
  session_id   uuid        not null,
  request_key  text        not null check (pg_catalog.length(request_key) between 1 and 100),
  tool_name    text        not null,
  args_hash    bytea       not null check (pg_catalog.length(args_hash) = 32),
  outcome      jsonb,      -- side effects: the result a retry answers; NULL for reads
  created_at   timestamptz not null default pg_catalog.now(),
  primary key (org_id, session_id, request_key),
  foreign key (org_id, session_id) references tenantgate.sessions (org_id, session_id)
    on delete cascade
);
comment on table tenantgate.tool_requests is
  'Request keys of a session, bound to one tool and one arguments hash. A side effect''s outcome '
  'is kept: a retry answers it and runs nothing. Reads are charged on every call.';
alter table tenantgate.tool_requests enable row level security;
alter table tenantgate.tool_requests force row level security;
create policy owner_all on tenantgate.tool_requests for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.tool_requests for select to tenantgate_admin using (true);

create table tenantgate.denials (
  claimed_org  uuid        not null,
  occurred_at  timestamptz not null default pg_catalog.clock_timestamp(),
  tool_name    text        not null check (pg_catalog.length(tool_name) <= 64),
  reason       text        not null check (reason in ('session_not_verified'))
);
create index denials_org_time_idx on tenantgate.denials (claimed_org, occurred_at);
comment on table tenantgate.denials is
  'Calls whose session could not be verified (ended, expired, wrong secret, unknown org). Not in '
  'any org''s hash chain: the caller proved nothing. Bounded rows, rate-limited per claimed org.';

create table tenantgate.denial_buckets (
  claimed_org  uuid             primary key,
  tokens       double precision not null,
  updated_at   timestamptz      not null,
  suppressed   bigint           not null default 0
);
comment on table tenantgate.denial_buckets is
  'Rate limit of denial records per claimed org (burst 20, 1 per second); refusals beyond it are '
  'only counted.';

alter table tenantgate.denials enable row level security;
alter table tenantgate.denials force row level security;
alter table tenantgate.denial_buckets enable row level security;
alter table tenantgate.denial_buckets force row level security;
create policy owner_all on tenantgate.denials for all to tenantgate_owner using (true) with check (true);
create policy owner_all on tenantgate.denial_buckets for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.denials for select to tenantgate_admin using (true);
create policy admin_read on tenantgate.denial_buckets for select to tenantgate_admin using (true);

-- HTTP-backed tools: the gate admits and charges the call and hands out the session customer's
-- sealed key; the mediator calls upstream and reports the outcome once, bound to the admission.
create table tenantgate.upstream_admissions (
  org_id       uuid        not null,
  audit_seq    bigint      not null,  -- the call's 'allowed' audit row
  session_id   uuid        not null,
  tool_name    text        not null,
  admitted_at  timestamptz not null default pg_catalog.now(),
  reported     boolean     not null default false,
  primary key (org_id, audit_seq)
);
comment on table tenantgate.upstream_admissions is
  'HTTP-backed calls the gate admitted; each may have its outcome (status, bytes, latency) '
  'recorded once, by the same session, as an ''upstream'' audit row.';
alter table tenantgate.upstream_admissions enable row level security;
alter table tenantgate.upstream_admissions force row level security;
create policy owner_all on tenantgate.upstream_admissions for all to tenantgate_owner
  using (true) with check (true);
create policy admin_read on tenantgate.upstream_admissions for select to tenantgate_admin
  using (true);
