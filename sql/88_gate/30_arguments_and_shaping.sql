-- 88_gate/30_arguments_and_shaping.sql: what goes into a tool and what comes out of it.
--
-- tool_arguments  checks a call's arguments against the tool's declared parameters (type, bounds,
--                 pattern, enum, required, no unknown keys) and fills defaults. The mediator checks
--                 the same JSON schema first for early errors; this is the check that counts.
-- mask_value      keeps just enough of a sensitive value to recognise it: j***@example.com, ***0142.
-- Shaping itself is in tenantgate.call_tool (40_call.sql): a column leaves unmasked only when its
-- data class is at or below the session's ceiling; sensitive columns above it leave masked;
-- secret and unclassified columns never leave.

set local role tenantgate_owner;

create function tenantgate.tool_arguments(p_parameters jsonb, p_args jsonb)
returns jsonb   -- {"args": {...}} or {"errors": [{"loc": [...], "msg": "..."}]}
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_out    jsonb := '{}';
  v_errors jsonb := '[]';
  p        jsonb;
  v        jsonb;
  v_name   text;
  v_type   text;
  v_text   text;
  v_num    numeric;
begin
  if p_args is null or pg_catalog.jsonb_typeof(p_args) <> 'object' then
    return pg_catalog.jsonb_build_object('errors', pg_catalog.jsonb_build_array(
      pg_catalog.jsonb_build_object('loc', '[]'::jsonb, 'msg', 'arguments must be an object')));
  end if;
  -- Unknown keys, all in one query (not one query per key).
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'loc', pg_catalog.jsonb_build_array(pg_catalog.left(k, 64)),
           'msg', 'unexpected argument')), '[]'::jsonb)
    into v_errors
    from pg_catalog.jsonb_object_keys(p_args) k
   where not exists (select 1 from pg_catalog.jsonb_array_elements(p_parameters) e
                      where e ->> 'name' = k);
  for p in select e from pg_catalog.jsonb_array_elements(p_parameters) e loop
    v_name := p ->> 'name';
    v_type := p ->> 'type';
    v := p_args -> v_name;
    if v is null or v = 'null'::jsonb then
      if p ? 'default' then
        v_out := v_out || pg_catalog.jsonb_build_object(v_name, p -> 'default');
      elsif coalesce((p ->> 'required')::boolean, true) then
        v_errors := v_errors || pg_catalog.jsonb_build_object(
          'loc', pg_catalog.jsonb_build_array(v_name), 'msg', 'required');
      end if;
      continue;
    end if;
    if v_type in ('string', 'uuid', 'date') then
      if pg_catalog.jsonb_typeof(v) <> 'string' then
        v_errors := v_errors || pg_catalog.jsonb_build_object(
          'loc', pg_catalog.jsonb_build_array(v_name), 'msg', 'must be a string');
        continue;
      end if;
      v_text := v #>> '{}';
      if v_type = 'uuid' and v_text !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        v_errors := v_errors || pg_catalog.jsonb_build_object(
          'loc', pg_catalog.jsonb_build_array(v_name), 'msg', 'must be a uuid');
        continue;
      end if;
      if v_type = 'date' and (v_text !~ '^\d{4}-\d{2}-\d{2}$'
          or pg_catalog.to_char(pg_catalog.to_date(v_text, 'YYYY-MM-DD'), 'YYYY-MM-DD') <> v_text) then
        v_errors := v_errors || pg_catalog.jsonb_build_object(
          'loc', pg_catalog.jsonb_build_array(v_name), 'msg', 'must be a date (YYYY-MM-DD)');
        continue;
      end if;
      if v_type = 'string' then
        if pg_catalog.length(v_text) > (p ->> 'maxLength')::integer then
          v_errors := v_errors || pg_catalog.jsonb_build_object(
            'loc', pg_catalog.jsonb_build_array(v_name),
            'msg', pg_catalog.format('at most %s characters', p ->> 'maxLength'));
          continue;
        end if;
        if pg_catalog.length(v_text) < coalesce((p ->> 'minLength')::integer, 0) then
          v_errors := v_errors || pg_catalog.jsonb_build_object(
            'loc', pg_catalog.jsonb_build_array(v_name),
            'msg', pg_catalog.format('at least %s characters', p ->> 'minLength'));
          continue;
        end if;
        if p ? 'pattern' and v_text !~ (p ->> 'pattern') then
          v_errors := v_errors || pg_catalog.jsonb_build_object(
            'loc', pg_catalog.jsonb_build_array(v_name), 'msg', 'does not match the pattern');
          continue;
        end if;
        if p ? 'enum' and not (p -> 'enum') @> pg_catalog.jsonb_build_array(v) then
          v_errors := v_errors || pg_catalog.jsonb_build_object(
            'loc', pg_catalog.jsonb_build_array(v_name),
            'msg', 'must be one of ' || (p ->> 'enum'));
          continue;
        end if;
      end if;
    elsif v_type in ('integer', 'number') then
      if pg_catalog.jsonb_typeof(v) <> 'number' then
        v_errors := v_errors || pg_catalog.jsonb_build_object(
          'loc', pg_catalog.jsonb_build_array(v_name), 'msg', 'must be a number');
        continue;
      end if;
      v_num := (v #>> '{}')::numeric;
      if v_type = 'integer' and v_num <> pg_catalog.trunc(v_num) then
        v_errors := v_errors || pg_catalog.jsonb_build_object(
          'loc', pg_catalog.jsonb_build_array(v_name), 'msg', 'must be an integer');
        continue;
      end if;
      if v_num < (p ->> 'minimum')::numeric or v_num > (p ->> 'maximum')::numeric then
        v_errors := v_errors || pg_catalog.jsonb_build_object(
          'loc', pg_catalog.jsonb_build_array(v_name),
          'msg', pg_catalog.format('must be between %s and %s', p ->> 'minimum', p ->> 'maximum'));
        continue;
      end if;
    elsif v_type = 'boolean' then
      if pg_catalog.jsonb_typeof(v) <> 'boolean' then
        v_errors := v_errors || pg_catalog.jsonb_build_object(
          'loc', pg_catalog.jsonb_build_array(v_name), 'msg', 'must be true or false');
        continue;
      end if;
    else
      v_errors := v_errors || pg_catalog.jsonb_build_object(
        'loc', pg_catalog.jsonb_build_array(v_name), 'msg', 'has an unknown type');
      continue;
    end if;
    v_out := v_out || pg_catalog.jsonb_build_object(v_name, v);
  end loop;
  if pg_catalog.jsonb_array_length(v_errors) > 0 then
    return pg_catalog.jsonb_build_object('errors', v_errors);
  end if;
  return pg_catalog.jsonb_build_object('args', v_out);
end
$$;
comment on function tenantgate.tool_arguments(jsonb, jsonb) is
  'Validate a call''s arguments against a tool''s parameters; {"args": normalized} or {"errors": [...]}.';

create function tenantgate.mask_value(p_value jsonb)
returns jsonb
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select case
    when p_value is null or p_value = 'null'::jsonb then p_value
    when (p_value #>> '{}') like '%@%' then pg_catalog.to_jsonb(
      pg_catalog.left(pg_catalog.split_part(p_value #>> '{}', '@', 1), 1) || '***@'
      || pg_catalog.substr(p_value #>> '{}', pg_catalog.strpos(p_value #>> '{}', '@') + 1))
    when pg_catalog.length(p_value #>> '{}') <= 4 then '"***"'::jsonb
    else pg_catalog.to_jsonb('***' || pg_catalog.right(p_value #>> '{}', 4))
  end
$$;
comment on function tenantgate.mask_value(jsonb) is
  'Masked form of a sensitive value: j***@example.com for an address, ***0142 otherwise.';

-- The highest data class (rank: public 0, internal 1, sensitive 2) a session's scopes may see.
create function tenantgate.scope_ceiling(p_scopes text[])
returns integer
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select greatest(1, coalesce(max(case sc.max_class when 'sensitive' then 2
                                                               when 'internal' then 1 else 0 end), 1))
  from tenantgate.scope_classes sc where sc.scope = any(p_scopes)
$$;
comment on function tenantgate.scope_ceiling(text[]) is
  'Class rank a session may see unmasked: internal (1) at least, sensitive (2) at most.';

-- Which output columns of a tool keep, mask or drop for this ceiling.
create function tenantgate.tool_column_plan(p_columns jsonb, p_ceiling integer,
                                            out keep text[], out masked text[])
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(c.key order by c.key) filter (where r.rank <= 2), '{}'),
         coalesce(array_agg(c.key order by c.key) filter (where r.rank = 2 and p_ceiling < 2), '{}')
  from pg_catalog.jsonb_each_text(p_columns) c
  left join tenantgate.column_classes cc on cc.relation || '.' || cc.column_name = c.value
  cross join lateral (select case cc.data_class when 'public' then 0 when 'internal' then 1
                                                when 'sensitive' then 2 else 3 end as rank) r
$$;
comment on function tenantgate.tool_column_plan(jsonb, integer) is
  'Output columns that may leave (keep) and those of them that leave masked, for a ceiling.';

-- The data classes of a tool's output columns are resolved when the tool is applied and again
-- whenever column_classes changes, so a call reads two arrays instead of joining per call.
create function tenantgate.tool_classes_resolve()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  select coalesce(array(select k from pg_catalog.jsonb_object_keys(new.columns) k
                          where k <> all(p.keep) order by k), '{}'), p.masked
    into new.withheld, new.sensitive
    from tenantgate.tool_column_plan(new.columns, 1) p;
  return new;
end
$$;
comment on function tenantgate.tool_classes_resolve() is
  'Trigger: derive tool_definitions.withheld and .sensitive from its columns and column_classes.';
create trigger tool_definitions_classes before insert or update on tenantgate.tool_definitions
  for each row execute function tenantgate.tool_classes_resolve();

create function tenantgate.tool_classes_refresh()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  update tenantgate.tool_definitions d set columns = d.columns;  -- re-fires the row trigger
  return null;
end
$$;
comment on function tenantgate.tool_classes_refresh() is
  'Trigger: a change of column_classes re-derives every tool''s withheld/sensitive columns.';
create trigger column_classes_refresh after insert or update or delete or truncate
  on tenantgate.column_classes
  for each statement execute function tenantgate.tool_classes_refresh();
revoke execute on function tenantgate.tool_classes_resolve(), tenantgate.tool_classes_refresh()
  from public;

-- Mask the given keys of one row (sessions without read:pii).
create function tenantgate.mask_row(p_row jsonb, p_keys text[])
returns jsonb
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_row jsonb := p_row;
  v_key text;
begin
  foreach v_key in array p_keys loop
    if v_row ? v_key then
      v_row := pg_catalog.jsonb_set(v_row, array[v_key], tenantgate.mask_value(v_row -> v_key));
    end if;
  end loop;
  return v_row;
end
$$;
comment on function tenantgate.mask_row(jsonb, text[]) is 'Mask these keys of one row.';
