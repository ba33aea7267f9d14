"""Encryption keys for customer secrets: a provider interface and an environment/file provider.

A provider holds several keys at once (key id -> key material) so that a rotation can overlap: the
old key stays readable while rows move to the new one. ``current_key_id`` is the key new writes use.
Key material is wrapped in :class:`Secret`, whose repr/str never show it; errors name key ids only.

Configuration (read by :meth:`FileKeyProvider.from_env`):

- ``TENANTGATE_SECRET_KEYS_FILE``: path of a file (mode 600 or 640) with one ``key_id:material``
  per line, ``#`` comments allowed; or ``TENANTGATE_SECRET_KEYS``: the same lines, comma-separated,
  for containers that inject secrets as environment variables;
- ``TENANTGATE_SECRET_KEY_CURRENT``: the key id new secrets are sealed with.

New material: ``generate_key_material()`` (43 url-safe characters, 256 random bits). The material
is the passphrase pgcrypto sees, so a DBA can run ``pgp_sym_decrypt(ciphertext, '<material>')``.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

__all__ = [
    "FileKeyProvider",
    "KeyConfigError",
    "KeyProvider",
    "Secret",
    "UnknownKeyError",
    "generate_key_material",
]

ENV_KEYS: Final = "TENANTGATE_SECRET_KEYS"
ENV_KEYS_FILE: Final = "TENANTGATE_SECRET_KEYS_FILE"
ENV_CURRENT: Final = "TENANTGATE_SECRET_KEY_CURRENT"

KEY_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # as checked by customer_secrets
MIN_MATERIAL_LENGTH: Final = 32
_MATERIAL_PATTERN: Final = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces


class Secret:
    """A secret string (key material or a customer's API key) that never prints itself.

    ``reveal()`` is the one way to read it; repr, str, format and pickling show nothing.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a secret must be a str, got {type(value).__name__} instead")
        self._value = value

    def reveal(self) -> str:
        """The secret itself: use it at once, never log or return it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return secrets.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a secret cannot be pickled")

    def __len__(self) -> int:
        return len(self._value)


class KeyConfigError(Exception):
    """the encryption keys are misconfigured: see mediator/keys.py for the expected format."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class UnknownKeyError(KeyError):
    """no encryption key with this id is configured."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id

    def __str__(self) -> str:
        return (
            f"no encryption key with id {self.key_id!r} is configured: add it to "
            f"{ENV_KEYS_FILE} (or {ENV_KEYS}) and restart; keys in use stay until rotation ends"
        )


@runtime_checkable
class KeyProvider(Protocol):
    """Where encryption keys come from. Implementations must never expose material in errors."""

    @property
    def current_key_id(self) -> str:
        """The key id that new ciphertexts are sealed with."""
        ...

    def key_ids(self) -> frozenset[str]:
        """Every key id that can be read right now."""
        ...

    def get(self, key_id: str) -> Secret:
        """The material of ``key_id``; raises UnknownKeyError when it is not configured."""
        ...


class FileKeyProvider:
    """Keys held in memory, loaded from a file or the environment; implements KeyProvider."""

    __slots__ = ("_current", "_keys")

    def __init__(self, keys: Mapping[str, Secret], current_key_id: str) -> None:
        for key_id, material in keys.items():
            _check_key(key_id, material)
        if current_key_id not in keys:
            raise KeyConfigError(
                f"the current key id {current_key_id!r} is not among the configured keys "
                f"{sorted(keys)!r}: add its material or pick one of those"
            )
        self._keys = dict(keys)
        self._current = current_key_id

    @property
    def current_key_id(self) -> str:
        return self._current

    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def get(self, key_id: str) -> Secret:
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyError(key_id) from None

    def with_current(self, key_id: str) -> FileKeyProvider:
        """The same keys with another current key id (the first step of a rotation)."""
        return FileKeyProvider(self._keys, key_id)

    def __repr__(self) -> str:
        return f"FileKeyProvider(key_ids={sorted(self._keys)!r}, current={self._current!r})"

    @classmethod
    def from_lines(cls, lines: Iterable[str], current_key_id: str) -> FileKeyProvider:
        """Parse ``key_id:material`` lines (blank lines and ``#`` comments ignored)."""
        keys: dict[str, Secret] = {}
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key_id, sep, material = line.partition(":")
            key_id = key_id.strip()
            if not sep:
                raise KeyConfigError(f"key line {number} has no ':'; write it as key_id:material")
            if key_id in keys:
                raise KeyConfigError(f"key id {key_id!r} is configured twice; keep one")
            keys[key_id] = Secret(material.strip())
        return cls(keys, current_key_id)

    @classmethod
    def from_file(cls, path: Path, current_key_id: str) -> FileKeyProvider:
        """Load a key file; refuses one that other users can read or write."""
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXO | stat.S_IWGRP):
                raise KeyConfigError(
                    f"key file {str(path)!r} is readable or writable by others: chmod 600 it"
                )
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyConfigError(f"cannot read key file {str(path)!r}: {exc.strerror}") from None
        return cls.from_lines(text.splitlines(), current_key_id)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FileKeyProvider:
        """Load keys as configured by the TENANTGATE_SECRET_KEY* variables (module docstring)."""
        env = os.environ if environ is None else environ
        current = env.get(ENV_CURRENT, "").strip()
        if not current:
            raise KeyConfigError(f"{ENV_CURRENT} is not set: name the key id new secrets use")
        if env.get(ENV_KEYS_FILE):
            return cls.from_file(Path(env[ENV_KEYS_FILE]), current)
        if env.get(ENV_KEYS):
            return cls.from_lines(env[ENV_KEYS].split(","), current)
        raise KeyConfigError(f"set {ENV_KEYS_FILE} (a key file) or {ENV_KEYS} to configure keys")


def generate_key_material() -> Secret:
    """Fresh key material: 256 random bits, url-safe text."""
    return Secret(secrets.token_urlsafe(32))


def _check_key(key_id: str, material: Secret) -> None:
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyConfigError(f"key id {key_id!r} must match {KEY_ID_PATTERN.pattern}")
    if not isinstance(material, Secret):
        raise KeyConfigError(f"key {key_id!r} must be wrapped in Secret")
    value = material.reveal()
    if len(value) < MIN_MATERIAL_LENGTH or not _MATERIAL_PATTERN.fullmatch(value):
        raise KeyConfigError(
            f"key {key_id!r} must be at least {MIN_MATERIAL_LENGTH} printable ASCII characters "
            "without spaces; make one with generate_key_material()"
        )
