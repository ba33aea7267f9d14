"""`tenantgate serve`: run the mediator over stdio or Streamable HTTP."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from tenantgate.mediator.hardening import harden
from tenantgate.mediator.settings import Settings


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


def serve(
    transport: Annotated[
        Transport, typer.Option(help="stdio (token from TENANTGATE_TOKEN) or http.")
    ] = Transport.stdio,
    host: Annotated[str | None, typer.Option(help="HTTP bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8765).")] = None,
    workers: Annotated[int | None, typer.Option(help="HTTP worker processes.")] = None,
) -> None:
    """Serve MCP tools for one customer per session; settings come from TENANTGATE_* variables."""
    # logs go to stderr: over stdio, stdout carries the protocol
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    for name, value in (("HTTP_HOST", host), ("HTTP_PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"TENANTGATE_{name}"] = str(value)  # worker processes read the env too
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's message names the variable, never its value
        typer.echo(f"tenantgate: bad settings: {exc}", err=True)
        raise typer.Exit(1) from None
    from tenantgate.mediator.logs import configure

    configure(settings.log_level, settings.log_format)
    if not settings.database_url.get_secret_value():
        typer.echo(
            "tenantgate: set TENANTGATE_DATABASE_URL (the tenantgate_mediator role)", err=True
        )
        raise typer.Exit(1)
    import httpx

    try:
        from tenantgate.mediator.tokens import TokenVerifier

        TokenVerifier(settings)  # fail now, with a clear message, on a missing or bad key
    except (ValueError, OSError, httpx.HTTPError) as exc:
        typer.echo(f"tenantgate: token verification is not configured: {exc}", err=True)
        raise typer.Exit(1) from None
    from tenantgate.mediator import tracing

    try:
        tracing.check(settings)
    except tracing.TracingUnavailable as exc:
        typer.echo(f"tenantgate: {exc}", err=True)
        raise typer.Exit(1) from None
    from tenantgate.cli.preflight import StartupError, check

    try:
        check(settings.database_url.get_secret_value())
    except StartupError as exc:
        typer.echo(f"tenantgate: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    harden()
    if transport is Transport.stdio:
        from tenantgate.mediator.stdio import serve_stdio

        asyncio.run(serve_stdio(settings))
    else:
        from tenantgate.mediator.http import serve_http

        serve_http(settings)


if __name__ == "__main__":  # `python -m tenantgate.cli.serve`, what `tenantgate serve` runs
    typer.run(serve)
