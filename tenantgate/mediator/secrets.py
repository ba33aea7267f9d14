"""Customer API keys at rest: seal in Python, store only ciphertext in tenantgate.customer_secrets.

Keys never travel to the database: encryption and decryption happen here (mediator/pgp.py), so no
key reaches SQL text, bind parameters, server logs or pg_stat_statements. Only ciphertext and a
key id do. A DBA holding the key can still read a row: ``pgp_sym_decrypt(ciphertext, '<key>')``.

Who calls what:

- the CLI, as ``tenantgate_admin``: :func:`read_secret_input` (stdin or a file, never argv),
  :func:`set_secret`, :func:`read_secret` (to check a stored key), :func:`rotate`;
- the mediator, as ``tenantgate_mediator`` inside its verified transaction (settings set with
  ``set_config(..., true)``): :func:`read_upstream_credential` / :func:`aread_upstream_credential`,
  which return the current verified customer's connector target and decrypted key, nothing else
  (SQL function ``tenantgate.current_upstream_credential()``, sql/85_secrets.sql).

Rotation (:func:`rotate`): first make the target key current everywhere (new writes use it), keep
the old key configured, then re-encrypt every row in committed batches of ``select ... for update
skip locked``. A crash loses at most one uncommitted batch; running it again skips rows already on
the target key. Every row always holds a (ciphertext, key_id) pair that decrypts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Final, LiteralString, cast
from uuid import UUID

import psycopg
from psycopg.rows import tuple_row

from tenantgate.mediator import pgp
from tenantgate.mediator.keys import KeyProvider, Secret, UnknownKeyError

__all__ = [
    "RotationError",
    "RotationReport",
    "SecretInputError",
    "SecretNotFoundError",
    "UnknownCustomerError",
    "UpstreamCredential",
    "aread_upstream_credential",
    "read_secret",
    "read_secret_input",
    "read_upstream_credential",
    "rotate",
    "seal",
    "set_secret",
    "unseal",
]

MAX_SECRET_LENGTH: Final = 4096

_UPSERT: Final[LiteralString] = """
insert into tenantgate.customer_secrets (org_id, customer_id, ciphertext, key_id)
values (%(org_id)s, %(customer_id)s, %(ciphertext)s, %(key_id)s)
on conflict (org_id, customer_id) do update
  set ciphertext = excluded.ciphertext, key_id = excluded.key_id, rotated_at = pg_catalog.now()
"""
_SELECT_ONE: Final[LiteralString] = """
select ciphertext, key_id from tenantgate.customer_secrets
where org_id = %(org_id)s and customer_id = %(customer_id)s
"""
_CURRENT_CREDENTIAL: Final[LiteralString] = """
select org_id, customer_id, connector_id, base_url, auth_header, ciphertext, key_id
from tenantgate.current_upstream_credential()
"""
_COUNT_TO_ROTATE: Final[LiteralString] = """
select pg_catalog.count(*) from tenantgate.customer_secrets where key_id <> %(target)s
"""
_CLAIM_BATCH: Final[LiteralString] = """
select org_id, customer_id, ciphertext, key_id from tenantgate.customer_secrets
where key_id <> %(target)s
order by org_id, customer_id
limit %(batch)s
for update skip locked
"""
_REWRITE_BATCH: Final[LiteralString] = """
update tenantgate.customer_secrets s
set ciphertext = b.ciphertext, key_id = %(target)s, rotated_at = pg_catalog.now()
from rows from (pg_catalog.unnest(%(org_ids)s::uuid[]), pg_catalog.unnest(%(customer_ids)s::uuid[]),
               pg_catalog.unnest(%(ciphertexts)s::bytea[])) as b(org_id, customer_id, ciphertext)
where s.org_id = b.org_id and s.customer_id = b.customer_id
"""


class SecretInputError(ValueError):
    """the secret read from input is empty or malformed: pass it on stdin or in a file."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class RotationError(RuntimeError):
    """a secret could not be re-encrypted: configure its key, then run the rotation again."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class UnknownCustomerError(LookupError):
    """no such customer account in this org: check the ids with `tenantgate customer list`."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class SecretNotFoundError(LookupError):
    """no secret is stored for this customer account: set one with `tenantgate secrets set`."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


@dataclass(frozen=True, slots=True)
class UpstreamCredential:
    """What an HTTP-backed tool needs for the current verified customer (key already decrypted)."""

    org_id: UUID
    customer_id: UUID
    connector_id: UUID
    base_url: str | None
    auth_header: str
    api_key: Secret


@dataclass(frozen=True, slots=True)
class RotationReport:
    """Outcome of one rotate() run. ``remaining`` rows were locked by others: run it again."""

    target_key_id: str
    rotated: int
    remaining: int
    seconds: float


Conn = psycopg.Connection[Any]
"""Any psycopg connection: queries here use tuple-row cursors of their own, whatever its rows."""
AsyncConn = psycopg.AsyncConnection[Any]
_Batch = list[tuple[UUID, UUID, bytes, str]]
ProgressCallback = Callable[[int, int], None]
"""Called after each committed batch with (rows rotated so far, rows to rotate in total)."""


def read_secret_input(stream: IO[str] | IO[bytes]) -> Secret:
    """Read a secret from stdin or a file: the first line, without its line ending."""
    raw = stream.read(MAX_SECRET_LENGTH + 2)
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise SecretInputError("the secret is not valid utf-8 text") from None
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    if not text:
        raise SecretInputError("no secret on input: pipe it in, e.g. `... < key.txt`")
    if len(text) > MAX_SECRET_LENGTH:
        raise SecretInputError(f"the secret is longer than {MAX_SECRET_LENGTH} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise SecretInputError("the secret holds control characters or several lines")
    return Secret(text)


def seal(api_key: Secret, provider: KeyProvider, key_id: str | None = None) -> tuple[bytes, str]:
    """Encrypt with ``key_id`` (default: the current key); returns (ciphertext, key id)."""
    key_id = provider.current_key_id if key_id is None else key_id
    material = provider.get(key_id)
    ciphertext = pgp.encrypt(api_key.reveal().encode(), material.reveal().encode())
    return ciphertext, key_id


def unseal(ciphertext: bytes, key_id: str, provider: KeyProvider) -> Secret:
    """Decrypt a stored secret; UnknownKeyError or pgp.DecryptionError when it cannot be read."""
    plain = pgp.decrypt(bytes(ciphertext), provider.get(key_id).reveal().encode())
    try:
        return Secret(plain.decode("utf-8"))
    except UnicodeDecodeError:
        raise pgp.DecryptionError("the decrypted secret is not utf-8 text") from None


def set_secret(
    conn: Conn,
    provider: KeyProvider,
    org_id: UUID,
    customer_id: UUID,
    api_key: Secret,
) -> None:
    """Store (or replace) a customer account's API key, sealed with the current key. Admin role."""
    ciphertext, key_id = seal(api_key, provider)
    params = {"org_id": org_id, "customer_id": customer_id}
    try:
        with conn.transaction():
            _cursor(conn).execute(_UPSERT, {**params, "ciphertext": ciphertext, "key_id": key_id})
    except psycopg.errors.ForeignKeyViolation:
        raise UnknownCustomerError(
            f"org {org_id} has no customer account {customer_id}: "
            "check the ids with `tenantgate customer list`"
        ) from None


def read_secret(
    conn: Conn,
    provider: KeyProvider,
    org_id: UUID,
    customer_id: UUID,
) -> Secret:
    """Read and decrypt one customer account's key (admin role: checks, emergencies)."""
    params = {"org_id": org_id, "customer_id": customer_id}
    row = _cursor(conn).execute(_SELECT_ONE, params).fetchone()
    if row is None:
        raise SecretNotFoundError
    ciphertext, key_id = cast(tuple[bytes, str], row)
    return unseal(ciphertext, key_id, provider)


def read_upstream_credential(conn: Conn, provider: KeyProvider) -> UpstreamCredential:
    """The verified customer's connector and key; call in the mediator's verified transaction."""
    return _credential(_cursor(conn).execute(_CURRENT_CREDENTIAL).fetchone(), provider)


async def aread_upstream_credential(conn: AsyncConn, provider: KeyProvider) -> UpstreamCredential:
    """Async twin of read_upstream_credential."""
    cursor = await conn.cursor(row_factory=tuple_row).execute(_CURRENT_CREDENTIAL)
    return _credential(await cursor.fetchone(), provider)


def _cursor(conn: Conn) -> psycopg.Cursor[tuple[Any, ...]]:
    return conn.cursor(row_factory=tuple_row)


def _credential(row: tuple[Any, ...] | None, provider: KeyProvider) -> UpstreamCredential:
    if row is None:
        raise SecretNotFoundError
    org_id, customer_id, connector_id, base_url, auth_header, ciphertext, key_id = cast(
        tuple[UUID, UUID, UUID, str | None, str, bytes, str], row
    )
    return UpstreamCredential(
        org_id=org_id,
        customer_id=customer_id,
        connector_id=connector_id,
        base_url=base_url,
        auth_header=auth_header,
        api_key=unseal(ciphertext, key_id, provider),
    )


def rotate(
    conn: Conn,
    provider: KeyProvider,
    target_key_id: str,
    *,
    batch_size: int = 500,
    progress: ProgressCallback | None = None,
) -> RotationReport:
    """Re-encrypt every secret not yet on ``target_key_id``, in committed batches. Admin role.

    Safe to run concurrently with itself (skip locked) and to run again after a crash.
    Raises UnknownKeyError before touching anything if the target or a row's key is missing.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size!r} instead")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("rotate commits batch by batch: call it outside any open transaction")
    provider.get(target_key_id)  # fail early on a target that is not configured
    started = time.perf_counter()
    total = _count_to_rotate(conn, target_key_id)
    done = 0
    if progress is not None:
        progress(done, total)
    while True:
        with conn.transaction():
            claim = {"target": target_key_id, "batch": batch_size}
            rows = _cursor(conn).execute(_CLAIM_BATCH, claim)
            batch = rows.fetchall()
            if not batch:
                break
            org_ids, customer_ids, ciphertexts = [], [], []
            for org_id, customer_id, ciphertext, key_id in cast(_Batch, batch):
                try:
                    secret = unseal(ciphertext, key_id, provider)
                except (UnknownKeyError, pgp.DecryptionError) as exc:
                    raise RotationError(
                        f"cannot read the secret of customer {customer_id} in org {org_id} "
                        f"(key {key_id!r}): {exc}; nothing in this batch was changed"
                    ) from None
                org_ids.append(org_id)
                customer_ids.append(customer_id)
                ciphertexts.append(seal(secret, provider, target_key_id)[0])
            _cursor(conn).execute(
                _REWRITE_BATCH,
                {
                    "target": target_key_id,
                    "org_ids": org_ids,
                    "customer_ids": customer_ids,
                    "ciphertexts": ciphertexts,
                },
            )
        done += len(batch)
        if progress is not None:
            progress(done, max(total, done))
    remaining = _count_to_rotate(conn, target_key_id)
    return RotationReport(target_key_id, done, remaining, time.perf_counter() - started)


def _count_to_rotate(conn: Conn, target_key_id: str) -> int:
    with conn.transaction():
        row = _cursor(conn).execute(_COUNT_TO_ROTATE, {"target": target_key_id}).fetchone()
    return cast(tuple[int], row)[0]
