-- 09_policy_per_row_function: policies that call volatile or non-leakproof functions on every row.
--
-- Reads each policy's USING and WITH CHECK expression trees (pg_policy.polqual/polwithcheck) and
-- finds function and operator calls that are not inside a sub-select. A call inside
-- `(select ...)` runs once per query (an InitPlan); anywhere else it runs once per row. Flagged:
-- volatile functions; non-leakproof functions fed row values; non-leakproof functions that are
-- not built in (context functions); built-in stable ones with arguments (current_setting).
-- Constant casts (folded at plan time) and argument-less clocks such as statement_timestamp()
-- pass.
-- Why it matters: a context function such as tenantgate.current_customer() called per row costs a
-- session lookup per row (3-10x slower here) and keeps the planner from using the tenant index; a
-- non-leakproof function fed row values can leak them in an error message before the policy has
-- filtered the row; a volatile one may answer differently for two rows of the same query.
with policies as (
  select p.oid as polid, p.polname, p.polrelid, 'using' as clause,
         p.polqual::text as tree
  from pg_catalog.pg_policy p where p.polqual is not null
  union all
  select p.oid, p.polname, p.polrelid, 'with check', p.polwithcheck::text
  from pg_catalog.pg_policy p where p.polwithcheck is not null
),
braces as (                     -- every { and } of a tree, with the nesting depth after it
  select b.polid, b.clause, b.pos, b.ch,
         pg_catalog.sum(case b.ch when '{' then 1 else -1 end)
           over (partition by b.polid, b.clause order by b.pos) as depth,
         b.tree
  from (select pl.polid, pl.clause, pl.tree, i as pos, pg_catalog.substr(pl.tree, i, 1) as ch
          from policies pl, pg_catalog.generate_series(1, pg_catalog.length(pl.tree)) i) b
  where b.ch in ('{', '}')
),
subselects as (                 -- [start, stop] of each `:subselect {QUERY ...}` node
  select o.polid, o.clause, o.pos as start,
         (select pg_catalog.min(c.pos) from braces c
           where c.polid = o.polid and c.clause = o.clause and c.pos > o.pos
             and c.ch = '}' and c.depth = o.depth - 1) as stop
  from braces o
  where o.ch = '{' and pg_catalog.substr(o.tree, o.pos - 11, 11) = ':subselect '
),
calls as (                      -- function and operator nodes outside every sub-select
  select o.polid, o.clause,
         pg_catalog.strpos(pg_catalog.substr(o.tree, o.pos,
           (select pg_catalog.min(c.pos) from braces c
             where c.polid = o.polid and c.clause = o.clause and c.pos > o.pos
               and c.ch = '}' and c.depth = o.depth - 1) - o.pos), '{VAR ') > 0 as reads_row,
         case
           when pg_catalog.substr(o.tree, o.pos, 10) = '{FUNCEXPR ' then
             pg_catalog.substring(pg_catalog.substr(o.tree, o.pos, 40), ':funcid (\d+)')::oid
           else
             (select op.oprcode::oid from pg_catalog.pg_operator op
               where op.oid = pg_catalog.substring(pg_catalog.substr(o.tree, o.pos, 60),
                                                   ':opno (\d+)')::oid)
         end as funcid
  from braces o
  where o.ch = '{'
    and (pg_catalog.substr(o.tree, o.pos, 10) = '{FUNCEXPR '
         or pg_catalog.substr(o.tree, o.pos, 8) = '{OPEXPR '
         or pg_catalog.substr(o.tree, o.pos, 14) = '{DISTINCTEXPR '
         or pg_catalog.substr(o.tree, o.pos, 12) = '{NULLIFEXPR '
         or pg_catalog.substr(o.tree, o.pos, 19) = '{SCALARARRAYOPEXPR ')
    and not exists (select 1 from subselects s
                     where s.polid = o.polid and s.clause = o.clause
                       and o.pos > s.start and o.pos < s.stop)
),
flagged as (
  select distinct c.polid, c.clause, f.oid as funcid, f.proname, fn.nspname,
         f.provolatile = 'v' as is_volatile
  from calls c
  join pg_catalog.pg_proc f on f.oid = c.funcid
  join pg_catalog.pg_namespace fn on fn.oid = f.pronamespace
  where f.provolatile = 'v'
     or (not f.proleakproof
         and (c.reads_row                                -- fed row values
              or f.oid >= 16384                          -- not built in (a context function)
              or (f.provolatile = 's' and f.pronargs > 0)))  -- current_setting('...') and kin
)
select 'policy_per_row_function'::text as lint,
       pg_catalog.format('policy %I on %s (%s)', p.polname, p.polrelid::pg_catalog.regclass,
                         x.clause) as object,
       pg_catalog.format('calls %I.%I() on every row, outside a sub-select: it is %s, so it %s',
                         x.nspname, x.proname,
                         case when x.is_volatile then 'volatile' else 'not leakproof' end,
                         case when x.is_volatile
                           then 'runs per row and may answer differently for rows of one query'
                           else 'runs per row, defeats the tenant index and may leak row values '
                                'in its errors' end) as why,
       pg_catalog.format(
         'alter policy %I on %s %s (%s);  -- wrap the call in a sub-select so it runs once per query',
         p.polname, p.polrelid::pg_catalog.regclass,
         case x.clause when 'using' then 'using' else 'with check' end,
         pg_catalog.regexp_replace(
           pg_catalog.pg_get_expr(case x.clause when 'using' then p.polqual else p.polwithcheck end,
                                  p.polrelid),
           '((?:[A-Za-z_][A-Za-z0-9_]*\.)?' || x.proname || '\([^()]*\))', '(select \1)', 'g'))
         as fix
from flagged x
join pg_catalog.pg_policy p on p.oid = x.polid
order by 2, 3
