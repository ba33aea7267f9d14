-- Templates of the demo tools (mediator/tools/demo.py). Each filters explicitly on the verified
-- org and customer (%(org_id)s, %(customer_id)s come from the token, never from arguments) and
-- also runs under the enrolled tables' RLS policy: belt and braces, and a Citus routing key.

-- name: get_customer_profile
select full_name, email, phone, company, country, notes, created_at
from demo.customer_profiles
where org_id = %(org_id)s and customer_id = %(customer_id)s;

-- name: list_tickets
select ticket_id, subject, status, priority, created_at, updated_at
from demo.tickets
where org_id = %(org_id)s and customer_id = %(customer_id)s
  and (%(status)s::text is null or status = %(status)s::text)
  and (%(after_ticket_id)s::bigint is null or ticket_id < %(after_ticket_id)s::bigint)
order by ticket_id desc
limit least(%(limit)s::int, %(max_rows)s::int);

-- name: search_tickets
select ticket_id, subject, status, priority, created_at
from demo.tickets
where org_id = %(org_id)s and customer_id = %(customer_id)s
  and pg_catalog.strpos(pg_catalog.lower(subject), pg_catalog.lower(%(query)s::text)) > 0
order by ticket_id desc
limit least(%(limit)s::int, %(max_rows)s::int);

-- name: list_invoices
select invoice_id, number, amount_cents, refunded_cents, currency, status, issued_on, due_on
from demo.invoices
where org_id = %(org_id)s and customer_id = %(customer_id)s
  and (%(status)s::text is null or status = %(status)s::text)
order by issued_on desc, invoice_id desc
limit least(%(limit)s::int, %(max_rows)s::int);

-- name: get_subscription
select plan, status, seats, monthly_cents, started_on, renews_on
from demo.subscriptions
where org_id = %(org_id)s and customer_id = %(customer_id)s;

-- name: account_health
select
  (select pg_catalog.count(*) from demo.tickets t
    where t.org_id = %(org_id)s and t.customer_id = %(customer_id)s
      and t.status in ('open', 'pending')) as open_tickets,
  (select pg_catalog.count(*) from demo.invoices i
    where i.org_id = %(org_id)s and i.customer_id = %(customer_id)s
      and (i.status = 'overdue' or (i.status = 'open' and i.due_on < current_date)))
    as overdue_invoices,
  (select coalesce(sum(i.amount_cents - i.refunded_cents), 0)::bigint from demo.invoices i
    where i.org_id = %(org_id)s and i.customer_id = %(customer_id)s
      and (i.status = 'overdue' or (i.status = 'open' and i.due_on < current_date)))
    as overdue_cents,
  s.plan, s.status as subscription_status, s.renews_on
from (select 1) one
left join demo.subscriptions s on s.org_id = %(org_id)s and s.customer_id = %(customer_id)s;

-- name: update_ticket_status
update demo.tickets
   set status = %(status)s::text, updated_at = pg_catalog.now()
 where org_id = %(org_id)s and customer_id = %(customer_id)s and ticket_id = %(ticket_id)s::bigint
returning ticket_id, subject, status, updated_at;

-- name: issue_refund
update demo.invoices
   set refunded_cents = refunded_cents + %(amount_cents)s::bigint,
       status = case when refunded_cents + %(amount_cents)s::bigint = amount_cents
                     then 'refunded' else status end
 where org_id = %(org_id)s and customer_id = %(customer_id)s
   and invoice_id = %(invoice_id)s::bigint
   and status in ('paid', 'refunded')
   and refunded_cents + %(amount_cents)s::bigint <= amount_cents
returning invoice_id, number, amount_cents, refunded_cents, currency, status;
