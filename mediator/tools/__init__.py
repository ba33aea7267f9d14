"""The tool registry: each tool is one SQL template, one input model and one catalog row."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString

from pydantic import BaseModel

# An HTTP-backed tool's second half: gets the rows its `sql` read under the verified context (for
# instance `select * from tenantgate.current_upstream_credential()`) and the validated input, runs
# after the call's audit row and charge committed, and returns the rows to shape.
Runner = Callable[[list[dict[str, Any]], BaseModel], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class Tool:
    """A whitelisted template. Scope, side effect and credit cost live in the catalog (SQL)."""

    name: str
    description: str
    input_model: type[BaseModel]
    sql: LiteralString
    source: str  # relation whose column data classes apply, e.g. "demo.tickets"
    many: bool = True  # a list of rows, or one row (not found when absent)
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True
    # output field -> "schema.table.column" when it is not `source.<field>`
    field_sources: dict[str, str] = field(default_factory=dict)
    runner: Runner | None = None  # read tools only: see Runner

    def column_of(self, field_name: str) -> str:
        return self.field_sources.get(field_name, f"{self.source}.{field_name}")

    def input_schema(self) -> dict[str, Any]:
        return _schema(self.input_model)

    def annotations(self) -> dict[str, Any]:
        return {
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": False,
        }


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


_NAME = re.compile(r"^-- name: ([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(path: Path) -> dict[str, LiteralString]:
    """Named queries from a .sql file (`-- name: x` headers), loaded once at import."""
    text = path.read_text()
    parts = _NAME.split(text)
    queries: dict[str, LiteralString] = {}
    for i in range(1, len(parts), 2):
        body = "\n".join(
            ln for ln in parts[i + 1].strip().splitlines() if not ln.lstrip().startswith("--")
        )
        # the file ships with the package and is never built from input
        text_sql: LiteralString = body.strip().rstrip(";")
        queries[parts[i]] = text_sql
    return queries


class Registry:
    """Tools by name. The catalog decides which of them a session sees."""

    def __init__(self, tools: list[Tool]) -> None:
        self._tools = {t.name: t for t in tools}

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __iter__(self) -> Any:
        return iter(self._tools.values())


def default_registry() -> Registry:
    from mediator.tools.demo import DEMO_TOOLS

    return Registry(DEMO_TOOLS)
