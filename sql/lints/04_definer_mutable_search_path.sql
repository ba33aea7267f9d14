-- 04_definer_mutable_search_path: SECURITY DEFINER functions whose search_path the caller controls.
--
-- Finds SECURITY DEFINER functions (outside pg_catalog and information_schema) with no
-- `set search_path` in their definition, or one that does not list pg_temp last. Why it matters:
-- a definer function runs with its owner's rights but resolves unqualified names through the
-- search_path; without a pinned one, the caller can put a function, operator or table of their
-- own first and have it run as the owner. With pg_temp not listed, it is searched first for
-- tables, so a caller's temporary table can shadow a real one.
with definers as (
  select p.oid, n.nspname, p.proname,
         pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,
                           pg_catalog.pg_get_function_identity_arguments(p.oid)) as signature,
         (select pg_catalog.substr(cfg, pg_catalog.length('search_path=') + 1)
            from pg_catalog.unnest(p.proconfig) cfg
           where cfg like 'search\_path=%' limit 1) as search_path
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  where p.prosecdef
    and n.nspname not in ('pg_catalog', 'information_schema')
)
select 'definer_mutable_search_path'::text as lint,
       d.signature as object,
       case when d.search_path is null
         then 'SECURITY DEFINER without a pinned search_path: the caller''s search_path decides '
              'which objects run with the owner''s rights'
         else pg_catalog.format('SECURITY DEFINER with search_path %s, which does not list '
                                'pg_temp last: a caller''s temporary table can shadow a real one',
                                d.search_path)
       end as why,
       pg_catalog.format('alter function %s set search_path = pg_catalog, pg_temp;',
                         d.signature) as fix
from definers d
where d.search_path is null
   or pg_catalog.btrim(pg_catalog.split_part(pg_catalog.replace(d.search_path, '"', ''), ',',
        pg_catalog.array_length(pg_catalog.string_to_array(d.search_path, ','), 1))) <> 'pg_temp'
order by 2
