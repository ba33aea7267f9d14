"""How tenantgate's own DDL must run on a Citus node (`db upgrade`, `tools apply`).

The sql/ files and generated tool functions run as NOLOGIN roles (`set local role
tenantgate_owner`, `tenantgate_tool`). Citus propagates DDL to the workers as the current role, so:

- on a coordinator that is not distributed yet, DDL propagation is switched off: nothing is on the
  workers yet, and `db distribute` creates everything there afterwards;
- on a coordinator that `db distribute` has run on, DDL must propagate (a replaced function or a
  changed policy must reach every node), which works for the sql/ files because distribute let
  tenantgate_owner log in; `tools apply` creates its functions as the DBA there and hands them to
  tenantgate_tool, which stays NOLOGIN;
- on a worker, tenantgate's DDL does not belong at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

DDL_ROLES = ("tenantgate_owner",)  # what the sql/ files run as (`tools apply` on a distributed
# coordinator creates the tool functions as the DBA and hands them to tenantgate_tool)
PROPAGATION_OFF = "-c citus.enable_ddl_propagation=off"


class CitusRefusal(RuntimeError):
    """tenantgate's DDL cannot run here as things are; the message says what to run."""


@dataclass(frozen=True, slots=True)
class CitusState:
    """What kind of node this is, seen from tenantgate."""

    citus: bool  # the extension is installed in this database
    coordinator: bool  # it has workers and is not one
    distributed: bool  # `db distribute` has run: tenantgate tables are hash-distributed

    @property
    def propagate_ddl(self) -> bool:
        """False on a coordinator that is not distributed yet (see the module's docstring)."""
        return not (self.coordinator and not self.distributed)


def state(conn: psycopg.Connection[Any]) -> CitusState:
    """Read the node's kind; a plain PostgreSQL is CitusState(False, False, False)."""
    row = conn.execute("select exists (select 1 from pg_catalog.pg_extension"
                       " where extname = 'citus')").fetchone()
    if not row or not row[0]:
        return CitusState(False, False, False)
    row = conn.execute(
        "select pg_catalog.citus_is_coordinator(),"
        " exists (select 1 from pg_catalog.pg_dist_node"
        "          where noderole = 'primary' and groupid <> 0),"
        " exists (select 1 from pg_catalog.pg_dist_partition p"
        "          join pg_catalog.pg_class c on c.oid = p.logicalrelid"
        "          join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        "          where p.partmethod = 'h' and n.nspname = 'tenantgate')").fetchone()
    is_coordinator, has_workers, distributed = row if row else (False, False, False)
    if not is_coordinator and has_workers:
        raise CitusRefusal("this is a Citus worker: run tenantgate's `db upgrade`, `db distribute`"
                           " and `tools apply` on the coordinator")
    return CitusState(True, bool(is_coordinator and has_workers), bool(distributed))


def check_roles_can_log_in(conn: psycopg.Connection[Any], what: str) -> None:
    """On a distributed coordinator, DDL reaches the workers as these roles: they must log in."""
    rows = conn.execute("select rolname from pg_catalog.pg_roles where rolname = any(%s)"
                        " and not rolcanlogin order by 1", (list(DDL_ROLES),)).fetchall()
    if rows:
        raise CitusRefusal(
            f"{rows[0][0]} cannot log in, and Citus runs tenantgate's DDL on the workers as it: "
            f"run `tenantgate db distribute` (it lets {rows[0][0]} log in), "
            f"then `{what}` again")


def prepare(conn: psycopg.Connection[Any], what: str) -> CitusState:
    """Check this node can take tenantgate's DDL; set propagation off for this transaction
    when it must be (the caller is inside the transaction that runs the DDL)."""
    found = state(conn)
    if found.coordinator and found.distributed:
        check_roles_can_log_in(conn, what)
    if not found.propagate_ddl:
        conn.execute("set local citus.enable_ddl_propagation = off")
    return found
