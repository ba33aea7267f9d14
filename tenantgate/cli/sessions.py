"""`tenantgate sessions`: open (mint a token), end, list and purge agent sessions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from tenantgate.cli import _refs
from tenantgate.cli._common import (
    DsnOption,
    JsonOption,
    connect,
    database_errors,
    emit_json,
    emit_record,
    emit_rows,
    epilog,
    fail,
    fetch_dicts,
    resolve_dsn,
    stderr,
)

app = typer.Typer(help="Open, end, list and purge agent sessions.", no_args_is_help=True)

OrgArg = Annotated[str, typer.Argument(help="Org name or id.")]
_TTL = re.compile(r"^(\d+)\s*([smh]?)$")


def parse_ttl(text: str) -> int:
    """`900`, `90s`, `15m` or `1h` as seconds."""
    match = _TTL.match(text.strip().lower())
    if match is None:
        fail(f"--ttl must look like 900, 90s, 15m or 1h, got {text!r}", 2)
    seconds = int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if not 0 < seconds <= 24 * 3600:
        fail(f"--ttl must be between 1 second and 24 hours, got {text!r}", 2)
    return seconds


def _settings() -> Any:
    from tenantgate.mediator.settings import Settings

    try:
        return Settings()
    except Exception as exc:  # pydantic names the variable, never its value
        fail(f"bad TENANTGATE_* settings: {str(exc).splitlines()[0]}")


def _signer(settings: Any, key_file: Path | None, issuer: str | None, audience: str | None,
            kid: str | None) -> Any:
    """The token signer: a private key file (ES256 / EdDSA), or the development HS256 secret."""
    from tenantgate.mediator.tokens import TokenSigner

    iss = issuer or settings.issuer
    aud = audience or settings.audience
    if key_file is not None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(key_file.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            fail(f"cannot read the signing key {str(key_file)!r}: {type(exc).__name__}; "
                 "give an unencrypted PEM private key (EC P-256 or Ed25519)")
        alg = "EdDSA" if isinstance(key, Ed25519PrivateKey) else "ES256"
        return TokenSigner(issuer=iss, audience=aud, private_key=key, algorithm=alg, kid=kid)
    if settings.dev_hs256_secret is not None:
        stderr.print("warning: DEVELOPMENT MODE: signing with TENANTGATE_DEV_HS256_SECRET (HS256)")
        return TokenSigner(issuer=iss, audience=aud, algorithm="HS256",
                           private_key=settings.dev_hs256_secret.get_secret_value().encode())
    fail("no signing key: pass --signing-key FILE (PEM, EC P-256 or Ed25519) or set "
         "TENANTGATE_JWT_PRIVATE_KEY_FILE", 2)


KNOWN_SCOPES = """
    select required_scope from tenantgate.tools
    union select default_scope from tenantgate.tool_definitions
    union select scope from tenantgate.scope_classes
    order by 1"""


def _require_known_scopes(conn: Any, scopes: list[str]) -> None:
    """Refuse a scope no catalog row, tool definition or data-class rule names: it would grant
    nothing, and is most likely a typo."""
    if not scopes:
        return
    known = [str(r[0]) for r in conn.execute(KNOWN_SCOPES).fetchall()]
    unknown = sorted(set(scopes) - set(known))
    if unknown:
        listed = f"known scopes: {', '.join(known)}" if known else "no scope exists yet"
        fail(f"no such scope {', '.join(repr(u) for u in unknown)} ({listed}): a scope exists once "
             "a tools file (`tenantgate tools apply`) or `tenantgate tools enable --scope` "
             "names it")


@app.command("open", epilog=epilog(
    "tenantgate sessions open acme --operator ana@acme.example --connector crm "
    "--customer GX-1001 --scope read:tickets --scope read:profile --ttl 15m "
    "--signing-key signing.pem > token.txt"))
def open_(
    org: OrgArg,
    operator: Annotated[str, typer.Option(help="Operator email or id.")],
    connector: Annotated[str, typer.Option(help="Connector name or id.")],
    customer: Annotated[str, typer.Option(help="Customer name, external reference or id.")],
    scope: Annotated[list[str] | None, typer.Option(help="Scope granted; repeatable.")] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 900, 90s, 15m, 1h (max 24h).")] = "15m",
    signing_key: Annotated[Path | None, typer.Option(
        envvar="TENANTGATE_JWT_PRIVATE_KEY_FILE", exists=True, dir_okay=False,
        help="PEM private key the mediator's public key verifies.")] = None,
    issuer: Annotated[str | None, typer.Option(help="Token issuer (default $TENANTGATE_ISSUER).")
                      ] = None,
    audience: Annotated[str | None, typer.Option(
        help="Token audience: the mediator's URL (default $TENANTGATE_AUDIENCE).")] = None,
    kid: Annotated[str | None, typer.Option(help="Key id put in the token header.")] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open a session and print its token once, to stdout (nothing else goes to stdout).

    The database keeps only the sha256 of the session secret; the token is the only copy.
    """
    from tenantgate.mediator.errors import NotFound
    from tenantgate.mediator.sessions import SessionManager

    seconds = parse_ttl(ttl)
    settings = _settings()
    if seconds > settings.max_token_lifetime_seconds:
        fail(f"--ttl {ttl} is longer than the mediator accepts "
             f"(TENANTGATE_MAX_TOKEN_LIFETIME_SECONDS={settings.max_token_lifetime_seconds}); "
             "open a shorter session", 2)
    signer = _signer(settings, signing_key, issuer, audience, kid)
    target = resolve_dsn(dsn)
    with connect(target) as conn:
        org_id = _refs.org_id(conn, org)
        ids = {
            "org_id": str(org_id),
            "operator_id": str(_refs.operator_id(conn, org_id, operator)),
            "connector_id": str(_refs.connector_id(conn, org_id, connector)),
            "customer_id": str(_refs.customer_id(conn, org_id, customer)),
        }
        _require_known_scopes(conn, list(scope or []))
    with database_errors():
        try:
            opened = SessionManager(target, signer).open(**ids, scopes=list(scope or []),
                                                         ttl_seconds=seconds)
        except NotFound:
            fail("cannot open session: org, operator, connector or customer is not active "
                 "(check them with `tenantgate customer list ORG`)")
    stderr.print(f"session {opened.session_id} expires {opened.expires_at:%Y-%m-%d %H:%M:%S %Z}; "
                 "the token is printed once and stored nowhere")
    if as_json:
        emit_json({"session_id": opened.session_id, "expires_at": opened.expires_at,
                   "token": opened.token, **ids})
    else:
        typer.echo(opened.token)


@app.command(epilog=epilog("tenantgate sessions end acme 3f1c0d7e-5b7a-4a52-9a57-0c1f5d1e2a90"))
def end(org: OrgArg, session: Annotated[str, typer.Argument(help="Session id.")],
        dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """End a session now: its token fails on the next call and its chat history is deleted."""
    session_id = _refs.require_uuid(session, "SESSION")
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        row = conn.execute("select tenantgate.end_session(%s, %s)", (org_id, session_id)
                           ).fetchone()
    ended = bool(row and row[0])
    if not ended:
        fail(f"no open session {session} in {org} (unknown, or already ended)")
    emit_record({"session_id": session_id, "ended": True}, as_json=as_json,
                message=f"ended session {session_id}")


@app.command("list", epilog=epilog("tenantgate sessions list acme",
                                   "tenantgate sessions list --all"))
def list_(org: Annotated[str | None, typer.Argument(help="Org name or id (default: all).")
                         ] = None,
          all_: Annotated[bool, typer.Option("--all", help="Include ended and expired ones.")
                          ] = False,
          dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """List open sessions (never their secrets: only a hash of each is stored)."""
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org) if org else None
        rows = fetch_dicts(conn, """
            select o.name as org, s.session_id, op.email as operator, c.name as connector,
                   ca.name as customer, s.scopes, s.created_at, s.expires_at, s.ended_at,
                   case when s.ended_at is not null then 'ended'
                        when s.expires_at <= now() then 'expired' else 'open' end as state
            from tenantgate.sessions s
            join tenantgate.orgs o on o.org_id = s.org_id
            join tenantgate.operators op
              on op.org_id = s.org_id and op.operator_id = s.operator_id
            join tenantgate.connectors c
              on c.org_id = s.org_id and c.connector_id = s.connector_id
            join tenantgate.customer_accounts ca
              on ca.org_id = s.org_id and ca.customer_id = s.customer_id
            where (%(org)s::uuid is null or s.org_id = %(org)s)
              and (%(all)s or (s.ended_at is null and s.expires_at > now()))
            order by s.created_at desc""", {"org": org_id, "all": all_})
    emit_rows(rows, as_json=as_json, title="sessions", empty="no open sessions")


@app.command(epilog=epilog("tenantgate sessions purge  # e.g. from cron every 10 minutes"))
def purge(dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Delete ended and expired sessions and every expired chat message."""
    with connect(dsn) as conn:
        row = conn.execute("select sessions, messages from tenantgate.purge_sessions()"
                           ).fetchone()
    sessions, messages = (int(row[0]), int(row[1])) if row else (0, 0)
    emit_record({"sessions": sessions, "messages": messages}, as_json=as_json,
                message=f"purged {sessions} sessions and {messages} messages")
