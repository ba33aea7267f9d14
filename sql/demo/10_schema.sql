-- demo/10_schema.sql: a small product schema of the kind a customer-success team works on, enrolled
-- with tenantgate.enrol_table exactly as a user would enrol their own tables. Installed by
-- `tenantgate demo` and the tests only: it is not part of the production migrations.
-- Every key leads with (org_id, customer_id) and ids are numbered per customer, so no tenant can
-- observe another through a unique violation or a shared sequence.

set local role tenantgate_owner;

create schema demo;
comment on schema demo is 'Demo product data: customer profiles (with PII), tickets, invoices, subscriptions.';

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

-- Ids are numbered per customer: the next one is the customer's highest plus one. The trigger
-- reads the table it fires on (tg_relid), not demo.tickets by name: on Citus it fires on a shard,
-- where that is the shard itself (a query of the distributed table from a shard is refused).
create function demo.next_id() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_column text := tg_argv[0];
  v_next   bigint;
begin
  if pg_catalog.to_jsonb(new) ->> v_column is null then
    execute pg_catalog.format('select coalesce(max(%I), 0) + 1 from %s'
                              ' where org_id = $1 and customer_id = $2', v_column, tg_relid::regclass)
       into v_next using new.org_id, new.customer_id;
    new := pg_catalog.jsonb_populate_record(new, pg_catalog.jsonb_build_object(v_column, v_next));
  end if;
  return new;
end
$$;

revoke execute on function demo.next_id() from public;

create table demo.tickets (
  org_id       uuid        not null,
  customer_id  uuid        not null,
  ticket_id    bigint      not null,  -- per customer: 1, 2, 3 ... (demo.next_id)
  subject      text        not null,
  body         text        not null default '',
  status       text        not null default 'open'
                           check (status in ('open', 'pending', 'solved', 'closed')),
  priority     text        not null default 'normal'
                           check (priority in ('low', 'normal', 'high', 'urgent')),
  created_at   timestamptz not null default pg_catalog.now(),
  updated_at   timestamptz not null default pg_catalog.now(),
  primary key (org_id, customer_id, ticket_id),
  foreign key (org_id, customer_id) references tenantgate.customer_accounts (org_id, customer_id)
);
create index tickets_customer_idx on demo.tickets (org_id, customer_id, status, created_at desc);
comment on table demo.tickets is 'Support tickets. Bodies are customer-written text: data, never instructions.';

create table demo.invoices (
  org_id        uuid        not null,
  customer_id   uuid        not null,
  invoice_id    bigint      not null,  -- per customer (demo.next_id)
  number        text        not null,
  amount_cents  bigint      not null check (amount_cents >= 0),
  currency      text        not null default 'EUR' check (currency ~ '^[A-Z]{3}$'),
  status        text        not null default 'open'
                            check (status in ('open', 'paid', 'overdue', 'refunded', 'void')),
  issued_on     date        not null default current_date,
  due_on        date        not null,
  refunded_cents bigint     not null default 0 check (refunded_cents >= 0),
  primary key (org_id, customer_id, invoice_id),
  foreign key (org_id, customer_id) references tenantgate.customer_accounts (org_id, customer_id),
  check (refunded_cents <= amount_cents)
);
create unique index invoices_number_key on demo.invoices (org_id, customer_id, number);
create trigger tickets_next_id before insert on demo.tickets
  for each row execute function demo.next_id('ticket_id');
create trigger invoices_next_id before insert on demo.invoices
  for each row execute function demo.next_id('invoice_id');
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

-- The demo schema's data classes: what each column may reveal (sql/80_mediator/10_data_classes.sql).
insert into tenantgate.column_classes (relation, column_name, data_class) values
  ('demo.customer_profiles', 'full_name',      'internal'),
  ('demo.customer_profiles', 'email',          'sensitive'),
  ('demo.customer_profiles', 'phone',          'sensitive'),
  ('demo.customer_profiles', 'company',        'public'),
  ('demo.customer_profiles', 'country',        'internal'),
  ('demo.customer_profiles', 'notes',          'secret'),
  ('demo.customer_profiles', 'created_at',     'internal'),
  ('demo.tickets',           'ticket_id',      'public'),
  ('demo.tickets',           'subject',        'internal'),
  ('demo.tickets',           'body',           'internal'),
  ('demo.tickets',           'status',         'public'),
  ('demo.tickets',           'priority',       'public'),
  ('demo.tickets',           'created_at',     'internal'),
  ('demo.tickets',           'updated_at',     'internal'),
  ('demo.invoices',          'invoice_id',     'public'),
  ('demo.invoices',          'number',         'public'),
  ('demo.invoices',          'amount_cents',   'internal'),
  ('demo.invoices',          'currency',       'public'),
  ('demo.invoices',          'status',         'public'),
  ('demo.invoices',          'issued_on',      'internal'),
  ('demo.invoices',          'due_on',         'internal'),
  ('demo.invoices',          'refunded_cents', 'internal'),
  ('demo.subscriptions',     'plan',           'public'),
  ('demo.subscriptions',     'status',         'public'),
  ('demo.subscriptions',     'seats',          'internal'),
  ('demo.subscriptions',     'monthly_cents',  'internal'),
  ('demo.subscriptions',     'started_on',     'internal'),
  ('demo.subscriptions',     'renews_on',      'internal');
