"""What `tenantgate db distribute` runs on a Citus coordinator, read from the catalog as SQL steps.

Tenant tables (a uuid org_id column) are distributed by org_id, all in one colocation group, so
every row of one org lives on one node. Global tables without org_id, and the directory of orgs,
become reference tables (a copy on every node). Foreign keys between them are dropped before and
re-added after, because Citus converts a table in the middle of a foreign-key graph otherwise.
SECURITY DEFINER functions that take the org as `p_org_id` become distributed functions keyed by
it, so a call is delegated to the org's node in one hop; every other function of the tenantgate
schemas is propagated to the workers so the delegated ones can call it there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from tenantgate.cli import citus_ddl

SCHEMAS = ("tenantgate", "tenantgate_tools")
DIRECTORY = "tenantgate.orgs"  # one row per org, read by every node: a reference table
ORG_ARGUMENT = "p_org_id"
OWNER = "tenantgate_owner"
LOGIN_ROLES = (OWNER,)  # Citus connects between nodes as it; tenantgate_tool stays NOLOGIN


class NotCitus(RuntimeError):
    """The database is not a Citus coordinator with workers."""


class NeedsRedesign(RuntimeError):
    """Something in the schema cannot be distributed as it is (the message says what)."""


# Citus refuses sub-selects in the policies of distributed tables. tenantgate's policies read the
# context through one: `(org_id, customer_id) = (select t.org_id, t.customer_id from
# tenantgate.current_tenant() t)`, or gate_tenant() for the tool role. Scalar calls say the same.
_CONTEXT_ROW = re.compile(
    r"\(\s*SELECT\s+((?:\w+\.\w+,\s*)*\w+\.\w+)\s+FROM\s+tenantgate\.(current_tenant|session_context"
    r"|gate_tenant)\(\)\s+\w+\([^()]*\)\)", re.IGNORECASE)
_CONTEXT_SCALAR = re.compile(r"\(\s*SELECT\s+(tenantgate\.current_\w+\(\))\s+AS\s+\w+\)",
                             re.IGNORECASE)
_VERIFIED = {"org_id": "tenantgate.current_org()", "customer_id": "tenantgate.current_customer()",
             "session_id": "tenantgate.current_session()",
             "operator_id": "tenantgate.current_operator()",
             "connector_id": "tenantgate.current_connector()"}
# gate_tenant() is the (org, customer) call_tool verified and set; the tool role reads the settings.
_GATE_SET = {"org_id": "tenantgate.setting_uuid('app.org_id'::text)",
             "customer_id": "tenantgate.setting_uuid('app.customer_id'::text)"}
SETTING_READER = "tenantgate.setting_uuid(text)"


def without_subselects(expression: str) -> str:
    """A policy expression with its context sub-selects replaced by the scalar context calls."""
    def row(match: re.Match[str]) -> str:
        columns = [c.strip().split(".", 1)[1] for c in match.group(1).split(",")]
        scalar = _GATE_SET if match.group(2).lower() == "gate_tenant" else _VERIFIED
        unknown = [c for c in columns if c not in scalar]
        if unknown:
            raise NeedsRedesign(f"no scalar context function for {unknown[0]!r}")
        calls = ", ".join(scalar[c] for c in columns)
        return f"ROW({calls})" if len(columns) > 1 else calls

    rewritten = _CONTEXT_SCALAR.sub(r"\1", _CONTEXT_ROW.sub(row, expression))
    if re.search(r"\bSELECT\b", rewritten, re.IGNORECASE):
        raise NeedsRedesign(f"a sub-select Citus refuses in a policy: {expression}")
    return rewritten


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of the plan and the sentence that says why it is there."""

    why: str
    statement: str

    def as_sql(self) -> str:
        return f"-- {self.why}\n{self.statement};"


def _rows(conn: psycopg.Connection[Any], query: str, params: Any = None) -> list[tuple[Any, ...]]:
    return conn.execute(sql.SQL(query), params).fetchall()


_TABLES = """
select pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       exists (select 1 from pg_catalog.pg_attribute a
                where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped
                  and a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype) as has_org,
       exists (select 1 from pg_catalog.pg_policy p
                where p.polrelid = c.oid and p.polname = 'tenantgate_isolation') as enrolled,
       -- 'h' distributed, 'n' reference, 'l' a Citus local table (Citus made it one when a
       -- migration added a foreign key to a reference table): still to distribute
       coalesce((select case when p.partmethod = 'n' and p.repmodel <> 't' then 'l'
                             else p.partmethod end
                   from pg_catalog.pg_dist_partition p
                  where p.logicalrelid = c.oid), '') as citus_method
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition
  and (n.nspname = any (%s) or exists (select 1 from pg_catalog.pg_policy p
                                        where p.polrelid = c.oid
                                          and p.polname = 'tenantgate_isolation'))
order by n.nspname = 'tenantgate' desc, 1
"""

_FOREIGN_KEYS = """
select pg_catalog.format('%%s', k.conrelid::pg_catalog.regclass), pg_catalog.quote_ident(k.conname),
       pg_catalog.pg_get_constraintdef(k.oid)
from pg_catalog.pg_constraint k
where k.contype = 'f'
  and k.conrelid = any (%s::pg_catalog.regclass[])
order by 1, 2
"""

_POLICIES = """
select pg_catalog.quote_ident(p.polname), pg_catalog.format('%%s', p.polrelid::pg_catalog.regclass),
       pg_catalog.pg_get_expr(p.polqual, p.polrelid),
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),
       (select pg_catalog.array_agg(pg_catalog.quote_ident(r.rolname) order by r.rolname)
          from pg_catalog.pg_roles r where r.oid = any (p.polroles)) as roles
from pg_catalog.pg_policy p
where p.polrelid = any (%s::pg_catalog.regclass[])
  and (p.polqual::text like '%%{SUBLINK %%' or p.polwithcheck::text like '%%{SUBLINK %%')
order by 2, 1
"""

_INSERT_TRIGGERS = """
select pg_catalog.quote_ident(t.tgname), pg_catalog.format('%%s', t.tgrelid::pg_catalog.regclass),
       pg_catalog.pg_get_triggerdef(t.oid)
from pg_catalog.pg_trigger t
where t.tgrelid = any (%s::pg_catalog.regclass[]) and not t.tgisinternal
  and (t.tgtype & 4) <> 0  -- fires on INSERT, so it would fire while Citus copies the rows
order by 2, 1
"""

_FUNCTIONS = """
select p.oid::pg_catalog.regprocedure::text, p.proname,
       p.prosecdef and coalesce(%s = any (p.proargnames[1:p.pronargs]), false) as keyed,
       p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype as is_trigger,
       -- a keyed function Citus propagated on its own (created by a migration after
       -- distribute) is done only once it is delegated by its org argument
       exists (select 1 from pg_catalog.pg_dist_object o
                where o.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass and o.objid = p.oid
                  and (o.distribution_argument_index is not null
                       or not (p.prosecdef
                               and coalesce(%s = any (p.proargnames[1:p.pronargs]), false))))
         as done
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname = any (%s) and p.prokind in ('f', 'a')  -- aggregates too (audit_chain)
order by p.oid  -- creation order: a SQL function's body is checked against the ones before it
"""


def is_coordinator(conn: psycopg.Connection[Any]) -> bool:
    """True on a Citus coordinator that has at least one worker (cli/citus_ddl.state)."""
    try:
        return citus_ddl.state(conn).coordinator
    except citus_ddl.CitusRefusal:  # a worker
        return False


def plan(conn: psycopg.Connection[Any]) -> list[Step]:
    """The steps that distribute tenantgate on this coordinator (empty once all are done)."""
    if not is_coordinator(conn):
        raise NotCitus("this database is not a Citus coordinator with workers: run "
                       "`create extension citus` and `citus_add_node` first (README, \"When one "
                       "PostgreSQL is not enough\")")
    tables = _rows(conn, _TABLES, (list(SCHEMAS),))
    reference = [name for name, has_org, _enrolled, method in tables
                 if (name == DIRECTORY or not has_org) and method != "n"]
    distributed = [name for name, has_org, _enrolled, method in tables
                   if has_org and name != DIRECTORY and method != "h"]
    already = {name for name, _has_org, _enrolled, method in tables if method in ("h", "n")}
    todo_ref = [t for t in reference if t not in already]
    todo_dist = [t for t in distributed if t not in already]
    # the colocation group every tenant table joins: an already distributed one, else the first
    anchor = next((name for name, has_org, _enrolled, method in tables
                   if has_org and name != DIRECTORY and method == "h"), None) or (
        todo_dist[0] if todo_dist else None)

    steps: list[Step] = []
    for (role,) in _rows(conn, "select rolname from pg_catalog.pg_roles where rolname = any(%s)"
                         " and not rolcanlogin order by rolname = %s desc, rolname",
                         (list(LOGIN_ROLES), OWNER)):
        steps.append(Step(
            f"Citus reaches other nodes as the current user, which is {role} inside the gate's "
            "definer functions and while `db upgrade` runs the sql/ files; give it no password "
            "and allow it in pg_hba.conf only from the nodes (or authenticate it with "
            "pg_dist_authinfo / certificates)",
            f"alter role {role} login"))
    if todo_ref or todo_dist:
        steps.append(Step("foreign keys to reference tables need one connection per node in the "
                          "transaction that distributes", "set local citus.multi_shard_modify_mode "
                          "to 'sequential'"))
        steps.append(Step("the audit tables' triggers only refuse UPDATE, DELETE and TRUNCATE; "
                          "they read no other table and are safe on every shard",
                          "set local citus.enable_unsafe_triggers = on"))
        readers: set[str] = set()
        for name, table, using, check, roles in _rows(conn, _POLICIES, (todo_dist,)):
            if "gate_tenant()" in f"{using} {check}":
                readers.update(roles or ())
            try:
                clauses = "".join(
                    f" {kind} ({without_subselects(expr)})"
                    for kind, expr in (("using", using), ("with check", check)) if expr)
            except NeedsRedesign as exc:
                raise NeedsRedesign(f"policy {name} on {table}: {exc}") from None
            steps.append(Step(f"Citus refuses sub-selects in policies of distributed tables: "
                              f"{name} on {table} calls the scalar context functions instead",
                              f"alter policy {name} on {table}{clauses}"))
        if readers:
            steps.append(Step("the rewritten tool-role policies read the gate's settings "
                              "directly", f"grant execute on function {SETTING_READER} to "
                              f"{', '.join(sorted(readers))}"))
        insert_triggers = _rows(conn, _INSERT_TRIGGERS, (todo_ref + todo_dist,))
        for name, table, _definition in insert_triggers:
            steps.append(Step(f"re-created below: it would fire on every node while Citus copies "
                              f"the rows of {table}, before the tables it writes exist there",
                              f"drop trigger {name} on {table}"))
        foreign_keys = _rows(conn, _FOREIGN_KEYS, (todo_ref + todo_dist,))
        for table, name, _definition in foreign_keys:
            steps.append(Step(f"re-added below: Citus distributes a table only once what it "
                              f"references is distributed ({table})",
                              f"alter table {table} drop constraint {name}"))
        for table in todo_ref:
            steps.append(Step(f"{table} has no org_id or is the directory of orgs: a copy on "
                              "every node", f"select create_reference_table('{table}')"))
        for table in todo_dist:
            colocate = "default" if table == anchor else anchor
            steps.append(Step(f"{table}: every row of one org on one node, colocated with "
                              f"{anchor}",
                              f"select create_distributed_table('{table}', 'org_id', "
                              f"colocate_with => '{colocate}')"))
        for table, name, definition in foreign_keys:
            steps.append(Step(f"the foreign key dropped above, now between colocated or "
                              f"reference tables ({table})",
                              f"alter table {table} add constraint {name} {definition}"))
        for _name, table, definition in insert_triggers:
            steps.append(Step(f"the trigger dropped above, back on {table} (and its shards)",
                              definition))
    for signature, proname, keyed, is_trigger, done in _rows(
            conn, _FUNCTIONS, (ORG_ARGUMENT, ORG_ARGUMENT, list(SCHEMAS))):
        if done or is_trigger:
            continue
        quoted = signature.replace("'", "''")
        if keyed and anchor:
            steps.append(Step(f"{proname}, called on its own, runs on the node that holds its "
                              "org's rows, in one hop",
                              f"select create_distributed_function('{quoted}', "
                              f"'{ORG_ARGUMENT}', colocate_with => '{anchor}')"))
        else:
            steps.append(Step(f"{proname} exists on every node, for the delegated calls",
                              f"select create_distributed_function('{quoted}')"))
    return steps


def script(steps: list[Step]) -> str:
    """The plan as one SQL script a DBA reviews (what `db distribute --sql` prints)."""
    if not steps:
        return "-- tenantgate is distributed: nothing to do\n"
    return "\n\n".join(step.as_sql() for step in steps) + "\n"
