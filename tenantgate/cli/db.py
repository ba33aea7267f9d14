"""`tenantgate db`: migrations (Alembic underneath), the security lints, enrolling tables."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import psycopg
import sqlalchemy as sa
import typer
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tenantgate.cli import citus_ddl
from tenantgate.cli import lints as lint_files
from tenantgate.cli._common import (
    DsnOption,
    JsonOption,
    connect,
    emit_json,
    emit_rows,
    epilog,
    fail,
    resolve_dsn,
    stderr,
)

REPO = Path(__file__).resolve().parents[2]

app = typer.Typer(
    help="Migrate the database (Alembic), review its SQL, check it, enrol your tables.",
    no_args_is_help=True,
)


def alembic_config() -> Config:
    """The project's Alembic configuration (the checkout's or the installed wheel's files)."""
    from tenantgate.cli.schema_files import alembic_config as config

    return config()


def sqlalchemy_url(dsn: str) -> str:
    """A DSN (URL or key=value) as the URL migrations/env.py expects in DATABASE_URL."""
    if "://" in dsn:
        return dsn
    info = {**_libpq_env(), **conninfo_to_dict(dsn)}
    port = info.pop("port", None)
    url = sa.engine.URL.create(
        "postgresql+psycopg",
        username=str(info.pop("user")) if info.get("user") else None,
        password=str(info.pop("password")) if info.get("password") else None,
        host=str(info.pop("host")) if info.get("host") else None,
        port=int(str(port)) if port else None,
        database=str(info.pop("dbname")) if info.get("dbname") else None,
        query={k: str(v) for k, v in info.items() if v is not None},
    )
    return url.render_as_string(hide_password=False)


def _libpq_env() -> dict[str, str]:
    """libpq's environment variables as conninfo keys (Alembic's URL does not read them)."""
    names = {"PGHOST": "host", "PGPORT": "port", "PGUSER": "user", "PGPASSWORD": "password",
             "PGDATABASE": "dbname"}
    return {key: os.environ[env] for env, key in names.items() if os.environ.get(env)}


def _with_options(url: str, options: str) -> str:
    """The URL with `options` (server settings, as libpq's options) added to any it has."""
    parsed = sa.engine.make_url(url)
    previous = parsed.query.get("options")
    previous = previous if isinstance(previous, str) else " ".join(previous or ())
    merged = f"{previous} {options}".strip()
    return parsed.update_query_dict({"options": merged}).render_as_string(hide_password=False)


@contextlib.contextmanager
def _database_url(dsn: str | None, options: str | None = None) -> Iterator[None]:
    """Point migrations/env.py at the DSN for the duration of one Alembic command."""
    previous = os.environ.get("DATABASE_URL")
    if dsn is not None:
        url = sqlalchemy_url(dsn)
        os.environ["DATABASE_URL"] = _with_options(url, options) if options else url
    else:
        os.environ.pop("DATABASE_URL", None)
    try:
        yield
    except CommandError as exc:
        fail(f"alembic: {exc}")
    except sa.exc.DBAPIError as exc:
        orig = exc.orig
        message = orig.diag.message_primary if isinstance(orig, psycopg.Error) else None
        fail(f"migration failed: {message or str(orig).splitlines()[0]}; nothing of the failed "
             "revision was applied (it runs in one transaction)")
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous


def _citus_ready(dsn: str, what: str) -> citus_ddl.CitusState:
    """Reach the database; on Citus, how the migrations' DDL must run there (cli/citus_ddl.py)."""
    with connect(dsn) as conn:
        try:
            found = citus_ddl.state(conn)
            if found.coordinator and found.distributed:
                citus_ddl.check_roles_can_log_in(conn, what)
        except citus_ddl.CitusRefusal as exc:
            fail(str(exc))
    if found.coordinator and not found.propagate_ddl:
        stderr.print("Citus coordinator, not distributed yet: migrating with DDL propagation "
                     "off (then run `tenantgate db distribute`)")
    return found


def _report_undistributed(dsn: str) -> None:
    """After an upgrade of a distributed coordinator: what `db distribute` still has to do."""
    from tenantgate.cli import citus_plan

    with connect(dsn, autocommit=False) as conn:
        pending = citus_plan.plan(conn)
        conn.rollback()
    if pending:
        stderr.print(f"{len(pending)} distribution steps pending (new tables or functions): "
                     "run `tenantgate db distribute` now (review with `--sql`)")


def _refuse_offline_revisions(dsn: str, revision: str) -> None:
    """On a distributed coordinator, refuse pending revisions that rebuild distributed tables.

    A revision module that sets ``citus_online = False`` replaces a table the cluster has
    distributed (0009 turns credit_accounts into a view over slots, 0010 rebuilds audit_log as a
    partitioned table); Citus runs such DDL only on the coordinator's copy, so the cluster would
    be left half-changed. Those revisions go in before `db distribute`.
    """
    with connect(dsn) as conn:
        current = _current_revisions(conn)
    scripts = ScriptDirectory.from_config(alembic_config())
    lower = current[0] if current else "base"
    offline = [
        r.revision for r in scripts.iterate_revisions(revision, lower)
        if r.revision not in current and getattr(r.module, "citus_online", True) is False
    ]
    if offline:
        fail(f"revision {', '.join(sorted(offline))} rebuilds tables this cluster has already "
             "distributed and cannot be applied online here: apply it on the single-node "
             "database before `tenantgate db distribute` (README, \"When one PostgreSQL is not "
             "enough\"); nothing was changed")


def _current_revisions(conn: psycopg.Connection[Any]) -> list[str]:
    row = conn.execute(
        "select pg_catalog.to_regclass('public.alembic_version') is not null,"
        " pg_catalog.has_table_privilege(coalesce(pg_catalog.to_regclass("
        "'public.alembic_version'), 'pg_catalog.pg_class'::regclass), 'select')").fetchone()
    if not row or not row[0]:
        return []
    if not row[1]:
        fail("this role cannot read public.alembic_version: run `db` commands with the DBA's "
             "DSN (the role that ran `tenantgate db upgrade`)")
    return [str(r[0]) for r in conn.execute("select version_num from public.alembic_version")]


@app.command(epilog=epilog("tenantgate db upgrade --dsn postgresql://postgres@db:5432/app",
                           "tenantgate db upgrade 0003"))
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply migrations up to REVISION (as a DBA: a role that may create roles and schemas)."""
    target = resolve_dsn(dsn)
    found = _citus_ready(target, "tenantgate db upgrade")
    if found.distributed:
        _refuse_offline_revisions(target, revision)
    with _database_url(target, None if found.propagate_ddl else citus_ddl.PROPAGATION_OFF):
        command.upgrade(alembic_config(), revision)
    _report_revision(target, as_json)
    if found.distributed:
        _report_undistributed(target)


@app.command(epilog=epilog("tenantgate db downgrade base --yes",
                           "tenantgate db downgrade -1 --yes"),
             context_settings={"ignore_unknown_options": True})  # `-1` is a revision, not a flag
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: an id, -1, or base.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revert migrations down to REVISION. `base` drops every tenantgate object and its data."""
    target = resolve_dsn(dsn)
    found = _citus_ready(target, "tenantgate db downgrade")
    if not yes and not typer.confirm(
            f"downgrade to {revision}? tables dropped on the way lose their data", err=True):
        fail("not confirmed; nothing changed")
    with _database_url(target, None if found.propagate_ddl else citus_ddl.PROPAGATION_OFF):
        command.downgrade(alembic_config(), revision)
    _report_revision(target, as_json)


def _report_revision(dsn: str, as_json: bool) -> None:
    with connect(dsn) as conn:
        revisions = _current_revisions(conn)
    if as_json:
        emit_json({"current": revisions})
    else:
        stderr.print(f"database at {', '.join(revisions) or 'base (nothing applied)'}")


@app.command(epilog=epilog("tenantgate db current", "tenantgate db current --json"))
def current(dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Show the database's revision and whether it is at head (exit 1 when it is not)."""
    script = ScriptDirectory.from_config(alembic_config())
    heads = list(script.get_heads())
    with connect(dsn) as conn:
        revisions = _current_revisions(conn)
    up_to_date = sorted(revisions) == sorted(heads)
    if as_json:
        emit_json({"current": revisions, "heads": heads, "up_to_date": up_to_date})
    else:
        typer.echo(f"current: {', '.join(revisions) or '(none: not migrated)'}")
        typer.echo(f"head:    {', '.join(heads)}" + ("" if up_to_date else
                   "   -> run `tenantgate db upgrade`"))
    if not up_to_date:
        raise typer.Exit(1)


@app.command(epilog=epilog("tenantgate db history", "tenantgate db history --json"))
def history(dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """List the migrations, oldest first; with a database, mark those applied."""
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(reversed(list(script.walk_revisions())))
    applied: set[str] | None = None
    if dsn or any(os.environ.get(n) for n in ("TENANTGATE_DSN", "DATABASE_URL")):
        with connect(dsn) as conn:
            current_revs = _current_revisions(conn)
        applied = set()
        for rev in current_revs:
            applied.update(r.revision for r in script.iterate_revisions(rev, "base"))
    rows = [
        {"revision": r.revision, "down_revision": r.down_revision,
         "description": (r.doc or "").strip(),
         **({"applied": r.revision in applied} if applied is not None else {})}
        for r in revisions
    ]
    emit_rows(rows, as_json=as_json, title="migrations")


@app.command("sql", epilog=epilog("tenantgate db sql > tenantgate.sql",
                                  "tenantgate db sql --from 0003 --to head",
                                  "tenantgate db sql --downgrade --from head --to base"))
def sql_(
    from_: Annotated[str | None, typer.Option("--from", help="Start revision (default: empty).")
                     ] = None,
    to: Annotated[str, typer.Option("--to", help="End revision.")] = "head",
    downgrade_: Annotated[bool, typer.Option("--downgrade", help="Print the downgrade SQL.")
                          ] = False,
) -> None:
    """Print the migration SQL for review, without touching any database."""
    config = alembic_config()
    with _database_url(None):
        if downgrade_:
            command.downgrade(config, f"{from_ or 'head'}:{to if to != 'head' else 'base'}",
                              sql=True)
        elif from_:
            command.upgrade(config, f"{from_}:{to}", sql=True)
        else:
            command.upgrade(config, to, sql=True)


@app.command(epilog=epilog("tenantgate db check", "tenantgate db check --json | jq '.[].fix'",
                           "tenantgate db check --lint rls_not_forced"))
def check(
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    lint: Annotated[list[str] | None, typer.Option(
        "--lint", help="Run only this lint (repeatable); see sql/lints/.")] = None,
) -> None:
    """Run the security lints; each finding names the object, why it matters and the fix.

    Exit code 1 when anything is found, 0 when clean.
    """
    known = {item.name for item in lint_files.load_lints()}
    unknown = sorted(set(lint or ()) - known)
    if unknown:
        fail(f"unknown lint {unknown[0]!r}; known: {', '.join(sorted(known))}", 2)
    with connect(dsn) as conn:
        findings = lint_files.run_lints(conn, tuple(lint or ()))
    if as_json:
        emit_json([f.as_dict() for f in findings])
    else:
        for f in findings:  # a report to act on: what, why, and the SQL that fixes it
            typer.echo(f"{f.lint}: {f.object}\n  why: {f.why}\n  fix: {f.fix}\n")
    ran = len(lint or ()) or len(known)
    stderr.print(f"{ran} lints, {len(findings)} finding{'s' if len(findings) != 1 else ''}")
    if findings:
        raise typer.Exit(1)


@app.command(epilog=epilog(
    "tenantgate db enrol crm.notes --org-column org_id --customer-column customer_id",
    "tenantgate db enrol crm.notes --privilege select --privilege update --full-access-role app"))
def enrol(
    table: Annotated[str, typer.Argument(help="schema.table to put under tenantgate.")],
    org_column: Annotated[str, typer.Option(help="The uuid column naming the org.")] = "org_id",
    customer_column: Annotated[str, typer.Option(help="The uuid column naming the customer.")
                               ] = "customer_id",
    privilege: Annotated[list[str] | None, typer.Option(
        help="Privilege the gate's tool functions get (select, insert, update, delete); "
        "repeatable. The mediator itself gets none.")] = None,
    full_access_role: Annotated[list[str] | None, typer.Option(
        help="Role that keeps seeing every row (your application's role); repeatable.")] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put an existing table under forced RLS, scoped to the verified session's org and customer.

    Run as the table's owner (or a superuser).
    """
    privileges = [p.lower() for p in (privilege or ["select"])]
    with connect(dsn) as conn:
        conn.add_notice_handler(lambda diag: stderr.print(
            f"{(diag.severity or 'notice').lower()}: {diag.message_primary}"))
        exists = conn.execute(
            "select pg_catalog.format('%%I.%%I', n.nspname, c.relname) from pg_catalog.pg_class c"
            " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
            " where c.oid = pg_catalog.to_regclass(%s)", (table,)).fetchone()
        if not exists or exists[0] is None:
            fail(f"no table {table!r}; name it as schema.table")
        conn.execute(
            sql.SQL("select tenantgate.enrol_table(%s::regclass, %s, %s, %s::text[], %s::name[])"),
            (table, org_column, customer_column, privileges, full_access_role or []))
        findings = [f for f in lint_files.run_lints(conn) if str(exists[0]) in f.object]
    record = {"table": str(exists[0]), "org_column": org_column,
              "customer_column": customer_column, "privileges": privileges,
              "full_access_roles": full_access_role or [],
              "findings": [f.as_dict() for f in findings]}
    if as_json:
        emit_json(record)
    else:
        typer.echo(f"enrolled {exists[0]}: tool functions get {', '.join(privileges)} on the "
                   "rows of the verified session only; declare tools over it in a tools file "
                   "(tenantgate tools check/apply)")
        for f in findings:
            stderr.print(f"finding: {f.lint} {f.object}: {f.why}\n  fix: {f.fix}")


from tenantgate.cli.distribute import distribute, distribute_epilog  # noqa: E402

app.command("distribute", epilog=distribute_epilog)(distribute)
