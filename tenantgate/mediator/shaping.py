"""Output shaping: data classes from the database decide which fields leave, masked or not."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

CLASSES = ("public", "internal", "sensitive", "secret")
RANK = {name: i for i, name in enumerate(CLASSES)}


@dataclass(frozen=True, slots=True)
class DataPolicy:
    """Column data classes and the highest class each scope may see (both loaded from SQL)."""

    columns: Mapping[str, str]  # "schema.table.column" -> class
    scopes: Mapping[str, str]  # scope -> highest class it may see

    def ceiling(self, scopes: Iterable[str]) -> int:
        """Highest class rank the scopes allow; 'internal' is the floor of a live session."""
        best = RANK["internal"]
        for s in scopes:
            cls = self.scopes.get(s)
            if cls is not None:
                best = max(best, min(RANK[cls], RANK["sensitive"]))  # secret never leaves
        return best

    def class_of(self, column: str) -> int:
        return RANK[self.columns.get(column, "secret")]  # undeclared = secret (fail closed)


def mask(value: Any) -> Any:
    """Keep just enough to recognise a value: j***@example.com, ***-0142."""
    if value is None:
        return None
    text = str(value)
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(text) <= 4:
        return "***"
    return "***" + text[-4:]


@dataclass(frozen=True, slots=True)
class Shaped:
    rows: list[dict[str, Any]]
    truncated: bool
    masked: tuple[str, ...]
    dropped: tuple[str, ...]


def shape_rows(
    rows: list[dict[str, Any]],
    *,
    column_of: Any,
    policy: DataPolicy,
    ceiling: int,
    max_rows: int,
    max_bytes: int,
) -> Shaped:
    """Apply the field allowlist, masking, and row and byte limits."""
    if not rows:
        return Shaped([], False, (), ())
    keep: list[str] = []
    masked: list[str] = []
    dropped: list[str] = []
    for name in rows[0]:
        rank = policy.class_of(column_of(name))
        if rank <= ceiling:
            keep.append(name)
        elif rank == RANK["sensitive"]:
            keep.append(name)
            masked.append(name)
        else:
            dropped.append(name)
    truncated = len(rows) > max_rows
    out: list[dict[str, Any]] = []
    size = 2
    for row in rows[:max_rows]:
        item = {k: (mask(row[k]) if k in masked else _plain(row[k])) for k in keep}
        size += len(dumps(item)) + 1
        if size > max_bytes:
            truncated = True
            break
        out.append(item)
    return Shaped(out, truncated, tuple(masked), tuple(dropped))


def _plain(value: Any) -> Any:
    """JSON-native values only: numeric becomes int when integral, else its exact text."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def _default(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, (uuid.UUID, dt.date, dt.datetime)):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default)
