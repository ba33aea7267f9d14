"""Checks before the mediator serves: the database answers, and the role cannot bypass RLS.

Each failure is one line and its own exit code, the same for the HTTP and stdio transports:
3 the database cannot be reached or refuses the credentials, 4 the role is unsafe to serve with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg

from tenantgate.cli._common import _hint, _reason, describe_target

EXIT_DATABASE = 3
EXIT_UNSAFE_ROLE = 4
CONNECT_TIMEOUT_SECONDS = 5

# Role attributes are not inherited, but SET ROLE reaches any role we are a member of: a member
# of a superuser, BYPASSRLS or owning role can become it, so membership counts as having it.
ROLE_CHECK: LiteralString = """
select r.rolname,
       r.rolsuper or exists (
         select 1 from pg_roles s
         where s.rolsuper and s.oid <> r.oid and pg_has_role(r.oid, s.oid, 'MEMBER')),
       r.rolbypassrls or exists (
         select 1 from pg_roles s
         where s.rolbypassrls and s.oid <> r.oid and pg_has_role(r.oid, s.oid, 'MEMBER')),
       (select string_agg(x.what, ', ' order by x.what) from (
          select distinct 'schema ' || n.nspname as what from pg_namespace n
          where n.nspname like 'tenantgate%' and pg_has_role(r.oid, n.nspowner, 'MEMBER')
          union
          select distinct 'objects in schema ' || n.nspname from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
          where (n.nspname like 'tenantgate%' or c.relrowsecurity)
            and pg_has_role(r.oid, c.relowner, 'MEMBER')
          union
          select distinct 'functions in schema ' || n.nspname from pg_proc p
          join pg_namespace n on n.oid = p.pronamespace
          where n.nspname like 'tenantgate%' and pg_has_role(r.oid, p.proowner, 'MEMBER')
        ) x)
from pg_roles r
where r.rolname = current_user
"""


@dataclass(frozen=True)
class StartupError(Exception):
    """Why the mediator will not start, in one line, and the exit code that says so."""

    message: str
    exit_code: int

    def __str__(self) -> str:
        return self.message


def unsafe_role_reason(row: tuple[Any, ...]) -> str | None:
    """The one-line reason a role may not serve tenant data, or None when it may."""
    name, superuser, bypassrls, owns = row
    if superuser:
        return f"role {name} is (or can become) a superuser, which bypasses row-level security"
    if bypassrls:
        return f"role {name} has (or can take) BYPASSRLS, which bypasses row-level security"
    if owns:
        return f"role {name} owns (or can act as the owner of) {owns}; owners can turn RLS off"
    return None


def check(dsn: str) -> None:
    """Raise StartupError unless `dsn` connects quickly as a role that RLS binds."""
    target = describe_target(dsn)
    try:
        conn = psycopg.connect(
            dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="tenantgate-preflight"
        )
    except psycopg.ProgrammingError as exc:
        raise StartupError(
            f"invalid TENANTGATE_DATABASE_URL: {_reason(exc)}", EXIT_DATABASE
        ) from None
    except psycopg.Error as exc:
        reason = _reason(exc)
        raise StartupError(
            f"cannot connect to {target}: {reason} ({_hint(reason)})".replace(
                "--dsn / DATABASE_URL", "TENANTGATE_DATABASE_URL"
            ),
            EXIT_DATABASE,
        ) from None
    with conn:
        row = conn.execute(ROLE_CHECK).fetchone()
    assert row is not None
    unsafe = unsafe_role_reason(row)
    if unsafe is not None:
        raise StartupError(
            f"refusing to serve as {target}: {unsafe}. Connect as tenantgate_mediator.",
            EXIT_UNSAFE_ROLE,
        )
