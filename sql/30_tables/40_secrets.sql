-- 30_tables/40_secrets.sql: customers' upstream API keys, encrypted.
--
-- The ciphertext is OpenPGP symmetric (pgcrypto's pgp_sym_encrypt format), produced and read in
-- the mediator's memory: the key never travels to the database. In an emergency a DBA holding the
-- key can still read one with `pgp_sym_decrypt(ciphertext, key)`.

set local role tenantgate_owner;

create table tenantgate.customer_secrets (
  org_id       uuid        not null,
  customer_id  uuid        not null,
  ciphertext   bytea       not null,
  key_id       text        not null check (key_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
  created_at   timestamptz not null default pg_catalog.now(),
  rotated_at   timestamptz,
  primary key (org_id, customer_id),
  foreign key (org_id, customer_id) references tenantgate.customer_accounts (org_id, customer_id)
);
create index customer_secrets_key_idx on tenantgate.customer_secrets (key_id);
comment on table tenantgate.customer_secrets is
  'Encrypted upstream API key per customer account (OpenPGP symmetric, pgcrypto-compatible).';
comment on column tenantgate.customer_secrets.key_id is
  'Which encryption key (held by the mediator, never here) sealed this row; rotation moves rows.';
