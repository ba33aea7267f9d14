"""Entry point of the `tenantgate` command: joins one sub-app per command group."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="tenantgate",
    help="Postgres-enforced tenant isolation for AI agents calling tools over MCP.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold DSNs with passwords
)



def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"tenantgate {version('tenantgate')}")  # the installed package's metadata
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="Print the installed version and exit."),
    ] = False,
) -> None:
    pass


from tenantgate.cli.serve import serve  # noqa: E402

app.command("serve")(serve)

from tenantgate.cli.demo import demo  # noqa: E402

app.command("demo")(demo)

from tenantgate.cli.authz import authz  # noqa: E402

app.command("authz")(authz)

from tenantgate.cli import (  # noqa: E402
    approvals,
    audit,
    connectors,
    credits,
    customer_secrets,
    customers,
    db,
    operators,
    orgs,
    sessions,
    tools,
)

app.add_typer(db.app, name="db")
app.add_typer(orgs.app, name="org")
app.add_typer(operators.app, name="operator")
app.add_typer(connectors.app, name="connector")
app.add_typer(customers.app, name="customer")
app.add_typer(tools.app, name="tools")
app.add_typer(credits.app, name="credits")
app.add_typer(sessions.app, name="sessions")
app.add_typer(approvals.app, name="approvals")
app.add_typer(audit.app, name="audit")
app.add_typer(customer_secrets.app, name="secrets")
app.info.epilog = (
    "Exit codes: 0 ok; 1 findings or failure; 2 usage; 3 (serve) database unreachable or "
    "credentials refused; 4 (serve) unsafe database role. Connect with --dsn, $TENANTGATE_DSN or "
    "$DATABASE_URL. Add --json for scripts. Walkthroughs: docs/cli.md."
)


def main() -> None:
    """Run the command line."""
    app()


if __name__ == "__main__":
    main()
