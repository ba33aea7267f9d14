"""Entry point of the `tenantgate` command: joins one sub-app per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tenantgate",
    help="Postgres-enforced tenant isolation for AI agents calling tools over MCP.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold DSNs with passwords
)

from cli.serve import serve  # noqa: E402

app.command("serve")(serve)


def main() -> None:
    """Run the command line."""
    app()


if __name__ == "__main__":
    main()
