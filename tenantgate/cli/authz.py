"""`tenantgate authz`: the OAuth 2.1 authorization server, a process of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def authz(
    dev_idp: Annotated[
        bool,
        typer.Option(
            "--dev-idp",
            help="Mount the DEVELOPMENT identity provider (anyone can log in): demo only.",
        ),
    ] = False,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            envvar="TENANTGATE_AUTHZ_SIGNING_KEY_FILE", exists=True, dir_okay=False,
            help="PEM private key; the mediator holds only its public half.",
        ),
    ] = None,
) -> None:
    """Serve the authorization server (settings: TENANTGATE_AUTHZ_*; see README)."""
    import uvicorn
    from pydantic import ValidationError

    from tenantgate.authz.server import build, signer_for
    from tenantgate.authz.settings import AuthzSettings

    try:
        settings = AuthzSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).upper()
        raise SystemExit(f"tenantgate authz: TENANTGATE_AUTHZ_{where}: {first['msg']}") from None
    server = build(settings, signer_for(settings, signing_key), dev_idp=dev_idp)
    typer.echo(f"authorization server on {settings.issuer} for {settings.resource}", err=True)
    uvicorn.run(server.app(), host=settings.http_host, port=settings.http_port,
                log_level="warning", access_log=False, server_header=False)
