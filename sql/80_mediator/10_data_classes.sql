-- 80_mediator/10_data_classes.sql: what each column a tool can return may reveal, and to whom.
--
-- Every column a mediator tool can return has a data class, declared here next to the schema:
--   public     fine anywhere (plan names, ticket status)
--   internal   any live session of the customer may see it (ticket subjects, amounts)
--   sensitive  personal data (email, phone): masked unless a scope raises the session's ceiling
--   secret     never leaves the database through the mediator, whatever the scope
-- A column with no row here counts as secret: forgetting to classify fails closed.
-- scope_classes maps a scope to the highest class it may see; a live session's floor is internal.

set local role tenantgate_owner;

create table tenantgate.column_classes (
  relation     text not null check (relation ~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$'),
  column_name  text not null check (column_name ~ '^[a-z_][a-z0-9_]*$'),
  data_class   text not null check (data_class in ('public', 'internal', 'sensitive', 'secret')),
  primary key (relation, column_name)
);
comment on table tenantgate.column_classes is
  'Data class of every column a mediator tool can return; unlisted columns are treated as secret.';

create table tenantgate.scope_classes (
  scope      text not null primary key check (scope ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  max_class  text not null check (max_class in ('public', 'internal', 'sensitive'))
);
comment on table tenantgate.scope_classes is
  'Highest data class a scope may see unmasked. No scope reaches secret.';

alter table tenantgate.column_classes enable row level security;
alter table tenantgate.column_classes force row level security;
alter table tenantgate.scope_classes enable row level security;
alter table tenantgate.scope_classes force row level security;
create policy owner_all on tenantgate.column_classes for all to tenantgate_owner
  using (true) with check (true);
create policy owner_all on tenantgate.scope_classes for all to tenantgate_owner
  using (true) with check (true);
create policy admin_all on tenantgate.column_classes for all to tenantgate_admin
  using (true) with check (true);
create policy admin_all on tenantgate.scope_classes for all to tenantgate_admin
  using (true) with check (true);
-- Not tenant data: the mediator reads the whole classification once at start.
create policy mediator_read on tenantgate.column_classes for select to tenantgate_mediator
  using (true);
create policy mediator_read on tenantgate.scope_classes for select to tenantgate_mediator
  using (true);

insert into tenantgate.scope_classes (scope, max_class) values
  ('read:pii', 'sensitive');
