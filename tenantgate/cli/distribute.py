"""`tenantgate db distribute`: spread tenantgate over a Citus cluster by org (cli/citus_plan.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from psycopg import sql

from tenantgate.cli import citus_plan
from tenantgate.cli._common import DsnOption, JsonOption, connect, emit_json, epilog, fail, stderr


def distribute(
    dsn: DsnOption = None,
    print_sql: Annotated[bool, typer.Option(
        "--sql", help="Print the statements for review instead of running them.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Distribute every tenant table by org_id on a Citus coordinator, after `db upgrade`.

    Run it as a superuser on the coordinator. One transaction.

    Idempotent: what is already distributed is left alone.
    """
    with connect(dsn, autocommit=False) as conn:
        try:
            steps = citus_plan.plan(conn)
        except (citus_plan.NotCitus, citus_plan.NeedsRedesign) as exc:
            fail(str(exc))
        if print_sql:
            conn.rollback()
            typer.echo("begin;\n\n" + citus_plan.script(steps) + "\ncommit;")
            return
        for step in steps:
            conn.execute(sql.SQL(step.statement))  # our own plan, read from the catalog
        conn.commit()
        row = conn.execute(
            "select count(*) filter (where partmethod = 'h'), count(*) filter (where partmethod"
            " = 'n'), (select count(*) from pg_catalog.pg_dist_object o where o.distribution"
            "_argument_index is not null) from pg_catalog.pg_dist_partition").fetchone()
    distributed, reference, functions = row if row else (0, 0, 0)
    record = {"steps": len(steps), "distributed_tables": distributed,
              "reference_tables": reference, "distributed_functions": functions}
    if as_json:
        emit_json(record)
    else:
        typer.echo(f"{distributed} tables distributed by org_id, {reference} reference tables, "
                   f"{functions} functions delegated by their org argument")
    stderr.print(f"{len(steps)} statements run")
    for role in citus_plan.LOGIN_ROLES:
        if any(step.statement == f"alter role {role} login" for step in steps):
            stderr.print(f"{role} may now log in (Citus connects between nodes as it): give it "
                         "no password and allow it in pg_hba.conf only from the nodes")


distribute_epilog = epilog("tenantgate db distribute --sql > distribute.sql",
                           "tenantgate db distribute --dsn postgresql://postgres@coordinator/app")
