"""New encryption keys written to a key file (mode 0600): what `tenantgate secrets keygen` does.

The file format is the one mediator/keys.py reads: ``key_id:material`` per line, ``#`` comments.
A new file is created exclusively (never over an existing one) with mode 0600; ``append=True``
adds a key to an existing file for a rotation, after checking that file the way the mediator
will read it (permissions, format, no duplicate id). The material is never printed or returned.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Final

from tenantgate.mediator.keys import (
    KEY_ID_PATTERN,
    FileKeyProvider,
    KeyConfigError,
    generate_key_material,
)

__all__ = ["KeyFileError", "new_key_id", "write_new_key"]

_HEADER: Final = (
    "# tenantgate encryption keys for customers' upstream API keys (mediator/keys.py).\n"
    "# One `key_id:material` per line; keep mode 0600. Remove a key only after\n"
    "# `tenantgate secrets rotate` reports 0 remaining on every database using it.\n"
)


class KeyFileError(Exception):
    """the key file cannot be written: check its path and permissions."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


def new_key_id(today: dt.date | None = None) -> str:
    """A fresh key id: ``k`` + the date + 4 random hex digits, e.g. ``k20261130-3fa9``."""
    day = today or dt.datetime.now(dt.UTC).date()
    return f"k{day:%Y%m%d}-{secrets.token_hex(2)}"


def write_new_key(path: Path, key_id: str | None = None, *, append: bool = False) -> str:
    """Write a new key to ``path`` (created 0600, or appended to); returns its key id."""
    key_id = key_id or new_key_id()
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyFileError(f"key id {key_id!r} must match {KEY_ID_PATTERN.pattern}")
    line = f"{key_id}:{generate_key_material().reveal()}\n"
    if append:
        _append(path, key_id, line)
    else:
        _create(path, line)
    return key_id


def _create(path: Path, line: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{str(path)!r} already exists: pass --append to add a key to it"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {str(path)!r}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        os.fchmod(stream.fileno(), 0o600)  # whatever the umask said
        stream.write(_HEADER + line)


def _append(path: Path, key_id: str, line: str) -> None:
    if not path.is_file():
        raise KeyFileError(f"{str(path)!r} does not exist: leave out --append to create it")
    try:
        existing = FileKeyProvider.from_file(path, current_key_id=_any_key_id(path))
    except KeyConfigError as exc:
        raise KeyFileError(f"the existing key file cannot be used: {exc}") from None
    if key_id in existing.key_ids():
        raise KeyFileError(f"key id {key_id!r} is already in {str(path)!r}: pick another")
    with path.open("a+", encoding="utf-8") as stream:
        stream.seek(0)
        text = stream.read()
        stream.write(("" if not text or text.endswith("\n") else "\n") + line)


def _any_key_id(path: Path) -> str:
    """A key id present in the file (the provider needs a current one just to load)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyFileError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and ":" in line:
            return line.partition(":")[0].strip()
    raise KeyFileError(f"{str(path)!r} holds no key yet: leave out --append to create a file")
