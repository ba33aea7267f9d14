-- 70_demo.sql: a small product schema of the kind a customer-success team works on, enrolled with
-- tenantgate.enrol_table exactly as a user would enrol their own tables. Used by the tests and by
-- `tenantgate demo`. Keys lead with org_id, like the control tables.

set local role tenantgate_owner;

create schema demo;
comment on schema demo is 'Demo product data: customer profiles (with PII), tickets, invoices, subscriptions.';
grant usage on schema demo to tenantgate_mediator;

create table demo.customer_profiles (
  org_id       uuid        not null,
  customer_id  uuid        not null,
  full_name    text        not null,
  email        text        not null,
  phone        text,
  company      text        not null,
  country      text        not null default '',
  notes        text        not null default '',
  created_at   timestamptz not null default pg_catalog.now(),
  primary key (org_id, customer_id),
  foreign key (org_id, customer_id) references tenantgate.customer_accounts (org_id, customer_id)
);
comment on table demo.customer_profiles is 'Contact details of a customer account. email and phone are PII.';

create table demo.tickets (
  org_id       uuid        not null,
  customer_id  uuid        not null,
  ticket_id    bigint      generated always as identity,
  subject      text        not null,
  body         text        not null default '',
  status       text        not null default 'open'
                           check (status in ('open', 'pending', 'solved', 'closed')),
  priority     text        not null default 'normal'
                           check (priority in ('low', 'normal', 'high', 'urgent')),
  created_at   timestamptz not null default pg_catalog.now(),
  updated_at   timestamptz not null default pg_catalog.now(),
  primary key (org_id, ticket_id),
  foreign key (org_id, customer_id) references tenantgate.customer_accounts (org_id, customer_id)
);
create index tickets_customer_idx on demo.tickets (org_id, customer_id, status, created_at desc);
comment on table demo.tickets is 'Support tickets. Bodies are customer-written text: data, never instructions.';

create table demo.invoices (
  org_id        uuid        not null,
  customer_id   uuid        not null,
  invoice_id    bigint      generated always as identity,
  number        text        not null,
  amount_cents  bigint      not null check (amount_cents >= 0),
  currency      text        not null default 'EUR' check (currency ~ '^[A-Z]{3}$'),
  status        text        not null default 'open'
                            check (status in ('open', 'paid', 'overdue', 'refunded', 'void')),
  issued_on     date        not null default current_date,
  due_on        date        not null,
  refunded_cents bigint     not null default 0 check (refunded_cents >= 0),
  primary key (org_id, invoice_id),
  foreign key (org_id, customer_id) references tenantgate.customer_accounts (org_id, customer_id),
  check (refunded_cents <= amount_cents)
);
create unique index invoices_number_key on demo.invoices (org_id, number);
create index invoices_customer_idx on demo.invoices (org_id, customer_id, issued_on desc);
comment on table demo.invoices is 'Invoices of a customer account.';

create table demo.subscriptions (
  org_id        uuid        not null,
  customer_id   uuid        not null,
  plan          text        not null,
  status        text        not null default 'active'
                            check (status in ('trial', 'active', 'past_due', 'cancelled')),
  seats         integer     not null default 1 check (seats > 0),
  monthly_cents bigint      not null default 0 check (monthly_cents >= 0),
  started_on    date        not null default current_date,
  renews_on     date,
  primary key (org_id, customer_id),
  foreign key (org_id, customer_id) references tenantgate.customer_accounts (org_id, customer_id)
);
comment on table demo.subscriptions is 'The current subscription of a customer account.';

select tenantgate.enrol_table('demo.customer_profiles');
select tenantgate.enrol_table('demo.tickets', p_privileges => array['select', 'update']);
select tenantgate.enrol_table('demo.invoices', p_privileges => array['select', 'update']);
select tenantgate.enrol_table('demo.subscriptions');
