"""`tenantgate secrets`: customers' upstream API keys, sealed in Python, never in argv."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from tenantgate.cli import _refs
from tenantgate.cli._common import DsnOption, JsonOption, connect, emit_record, epilog, fail, stderr

app = typer.Typer(help="Set, check and rotate customers' upstream API keys (sealed at rest).",
                  no_args_is_help=True)

OrgArg = Annotated[str, typer.Argument(help="Org name or id.")]
CustomerArg = Annotated[str, typer.Argument(help="Customer name, external reference or id.")]


def _provider() -> Any:
    from tenantgate.mediator.keys import FileKeyProvider, KeyConfigError

    try:
        return FileKeyProvider.from_env()
    except KeyConfigError as exc:
        fail(f"encryption keys: {exc}", 2)


@app.command("set", epilog=epilog(
    "tenantgate secrets set acme GX-1001 < globex-api-key.txt",
    "tenantgate secrets set acme GX-1001 --from-file /run/secrets/globex"))
def set_(
    org: OrgArg,
    customer: CustomerArg,
    from_file: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Read the key from this file (default: stdin).")
    ] = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a customer's API key, read from stdin or a file (never from an argument).

    It is encrypted here with $TENANTGATE_SECRET_KEY_CURRENT; only ciphertext reaches the database.
    """
    from tenantgate.mediator.secrets import (
        SecretInputError,
        UnknownCustomerError,
        read_secret_input,
        set_secret,
    )

    provider = _provider()
    try:
        if from_file is not None:
            with from_file.open("rb") as stream:
                api_key = read_secret_input(stream)
        else:
            if sys.stdin.isatty():
                fail("pipe the key in (`... < key.txt`) or pass --from-file; it is never "
                     "accepted as an argument", 2)
            api_key = read_secret_input(sys.stdin)
    except SecretInputError as exc:
        fail(str(exc), 2)
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        customer_id = _refs.customer_id(conn, org_id, customer)
        try:
            set_secret(conn, provider, org_id, customer_id, api_key)
        except UnknownCustomerError as exc:
            fail(str(exc))
    emit_record({"org_id": org_id, "customer_id": customer_id,
                 "key_id": provider.current_key_id}, as_json=as_json,
                message=f"stored the API key of {customer}, sealed with key "
                f"{provider.current_key_id!r}")


@app.command(epilog=epilog(
    "tenantgate secrets keygen --file /etc/tenantgate/keys",
    "tenantgate secrets keygen --file /etc/tenantgate/keys --append   # before a rotation"))
def keygen(
    file: Annotated[Path, typer.Option("--file", dir_okay=False,
                                       help="Key file to create (mode 0600) or append to.")],
    key_id: Annotated[str | None, typer.Option(
        "--key-id", help="Id of the new key (default: k<date>-<4 hex digits>).")] = None,
    append: Annotated[bool, typer.Option(
        "--append", help="Add the key to an existing key file (to rotate to it).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a new encryption key to a key file and print its key id (never the key).

    Point $TENANTGATE_SECRET_KEYS_FILE at the file and $TENANTGATE_SECRET_KEY_CURRENT at the id.
    """
    from tenantgate.mediator.keygen import KeyFileError, write_new_key

    try:
        new_id = write_new_key(file, key_id, append=append)
    except KeyFileError as exc:
        fail(str(exc), 2)
    if as_json:
        emit_record({"key_id": new_id, "file": str(file)}, as_json=True, message="")
        return
    typer.echo(new_id)
    stderr.print(f"{'added' if append else 'wrote'} key {new_id!r} to {str(file)!r} (mode 0600); "
                 f"use it with TENANTGATE_SECRET_KEYS_FILE={file} "
                 f"TENANTGATE_SECRET_KEY_CURRENT={new_id}", markup=False, soft_wrap=True)


@app.command(epilog=epilog("tenantgate secrets check acme GX-1001"))
def check(org: OrgArg, customer: CustomerArg,
          dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Check that a customer's stored key decrypts with the configured keys (never prints it)."""
    from tenantgate.mediator import pgp
    from tenantgate.mediator.keys import UnknownKeyError
    from tenantgate.mediator.secrets import SecretNotFoundError, read_secret

    provider = _provider()
    with connect(dsn) as conn:
        org_id = _refs.org_id(conn, org)
        customer_id = _refs.customer_id(conn, org_id, customer)
        try:
            secret = read_secret(conn, provider, org_id, customer_id)
        except SecretNotFoundError as exc:
            fail(str(exc))
        except (UnknownKeyError, pgp.DecryptionError) as exc:
            fail(f"the stored key does not decrypt: {exc}")
    emit_record({"org_id": org_id, "customer_id": customer_id, "readable": True,
                 "length": len(secret)}, as_json=as_json,
                message=f"the API key of {customer} decrypts ({len(secret)} characters)")


@app.command(epilog=epilog("TENANTGATE_SECRET_KEY_CURRENT=k2026 tenantgate secrets rotate",
                           "tenantgate secrets rotate --to k2026 --batch-size 200"))
def rotate(
    to: Annotated[str | None, typer.Option(
        help="Key id to move every secret to (default $TENANTGATE_SECRET_KEY_CURRENT).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")
                          ] = 500,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-encrypt every stored secret with one key, in committed batches (safe to re-run).

    Keep the old key configured until this reports 0 remaining.
    """
    from tenantgate.mediator.keys import KeyConfigError, UnknownKeyError
    from tenantgate.mediator.secrets import RotationError
    from tenantgate.mediator.secrets import rotate as rotate_secrets

    provider = _provider()
    target = to or provider.current_key_id
    with connect(dsn) as conn, Progress(console=stderr, transient=True,
                                        disable=as_json) as progress:
        task = progress.add_task(f"re-encrypting with {target}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = rotate_secrets(conn, provider.with_current(target), target,
                                    batch_size=batch_size, progress=advance)
        except (UnknownKeyError, KeyConfigError) as exc:
            fail(f"{exc}; configure it in TENANTGATE_SECRET_KEYS(_FILE) first", 2)
        except RotationError as exc:
            fail(str(exc))
    emit_record({"target_key_id": report.target_key_id, "rotated": report.rotated,
                 "remaining": report.remaining, "seconds": round(report.seconds, 3)},
                as_json=as_json,
                message=f"rotated {report.rotated} secrets to {target}; "
                f"{report.remaining} remaining" + (" (locked: run it again)"
                                                   if report.remaining else ""))
    if report.remaining:
        raise typer.Exit(1)
