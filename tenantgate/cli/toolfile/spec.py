"""The tools file: typed, bounded tool declarations (YAML, modelled on MCP Toolbox's tools.yaml)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
# 54: the preview function adds "__preview" and PostgreSQL names stop at 63 bytes.
TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,53}\Z")
SCOPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}\Z")
RELATION_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\Z")
# Parameters that would let a caller name a tenant. The verified context is :org_id/:customer_id.
TENANT_WORDS = re.compile(
    r"(^|_)(org|orgs|organization|organisation|tenant|customer|account|user|owner|session|"
    r"operator|connector)(_?ids?|_?ref|_?uuid|_?key)?($|_)"
)
PG_TYPES = {
    "string": "text",
    "integer": "bigint",
    "number": "numeric",
    "boolean": "boolean",
    "uuid": "uuid",
    "date": "date",
}


class ToolFileError(ValueError):
    """A tools file that cannot be applied; the message names the file, the tool and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Strict):
    name: str
    type: Literal["string", "integer", "number", "boolean", "uuid", "date"]
    description: str = Field(min_length=1, max_length=500)
    required: bool | None = None
    default: Any = None
    maxLength: int | None = Field(default=None, ge=1, le=100_000)
    minLength: int | None = Field(default=None, ge=0, le=100_000)
    pattern: str | None = Field(default=None, max_length=500)
    enum: list[Any] | None = Field(default=None, min_length=1, max_length=100)
    minimum: float | None = None
    maximum: float | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("must be lower_snake_case, 1-64 characters")
        if TENANT_WORDS.search(value):
            raise ValueError(
                "names a tenant: the org and customer come from the verified session "
                "(:org_id and :customer_id in the statement), never from an argument"
            )
        return value

    @model_validator(mode="after")
    def _bounded(self) -> Parameter:
        if self.type == "string" and self.maxLength is None:
            raise ValueError(f"string parameter {self.name!r} needs maxLength")
        if self.type in ("integer", "number") and (self.minimum is None or self.maximum is None):
            raise ValueError(f"{self.type} parameter {self.name!r} needs minimum and maximum")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern of {self.name!r} is not a regular expression: {exc}"
                ) from None
        return self

    @property
    def is_required(self) -> bool:
        return self.default is None and (self.required is None or self.required)

    def as_json(self) -> dict[str, Any]:
        """The parameter as tenantgate.tool_arguments reads it."""
        out = self.model_dump(exclude_none=True)
        if self.type == "integer":
            for key in ("minimum", "maximum"):
                out[key] = int(out[key])
        out["required"] = self.is_required
        return out

    def json_schema(self) -> dict[str, Any]:
        kind = {"uuid": "string", "date": "string"}.get(self.type, self.type)
        schema: dict[str, Any] = {"type": kind, "description": self.description}
        if self.type == "uuid":
            schema["format"] = "uuid"
        if self.type == "date":
            schema["format"] = "date"
        for key in ("maxLength", "minLength", "pattern", "enum", "minimum", "maximum", "default"):
            value = getattr(self, key)
            if value is not None:
                schema[key] = (
                    int(value)
                    if key in ("minimum", "maximum") and self.type == "integer"
                    else value
                )
        return schema


class RateLimit(_Strict):
    burst: int = Field(default=30, ge=1, le=100_000)
    per_second: float = Field(default=10.0, gt=0, le=100_000)


class Catalog(_Strict):
    scope: str
    cost: int = Field(default=1, ge=0, le=1_000_000)
    approval: Literal["none", "operator", "host"] = "none"
    rate_limit: RateLimit = RateLimit()

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        if not SCOPE.match(value):
            raise ValueError("a scope is lowercase, e.g. read:tickets")
        return value


class Annotations(_Strict):
    readOnlyHint: bool | None = None
    destructiveHint: bool | None = None
    idempotentHint: bool | None = None
    openWorldHint: bool | None = None


class ToolSpec(_Strict):
    name: str
    kind: Literal["sql", "postgres-sql", "http"] = "sql"
    title: str = Field(default="", max_length=200)
    description: str = Field(min_length=1, max_length=2000)
    parameters: list[Parameter] = []
    statement: str | None = Field(default=None, max_length=100_000)
    preview: str | None = Field(default=None, max_length=100_000)
    access: Literal["read", "write"] = "read"
    returns: Literal["one", "many"] = "many"
    columns: dict[str, str] = {}
    annotations: Annotations = Annotations()
    output_schema: dict[str, Any] | None = Field(default=None, alias="outputSchema")
    max_rows: int = Field(default=100, ge=1, le=10_000)
    max_bytes: int = Field(default=65_536, ge=1024, le=16 * 1024 * 1024)
    catalog: Catalog
    http: dict[str, Any] | None = None
    # Toolbox keys accepted and ignored: the database is the source, and auth is the session.
    source: str | None = None
    authRequired: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not TOOL_NAME.match(value) or value.endswith("__preview"):
            raise ValueError("a tool name is lower_snake_case, 1-54 characters")
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str]) -> dict[str, str]:
        for column, source in value.items():
            if not RELATION_COLUMN.match(source):
                raise ValueError(
                    f"column {column!r}: source must be schema.table.column, got {source!r}"
                )
        return value

    @model_validator(mode="after")
    def _shape(self) -> ToolSpec:
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError("parameter names must be unique")
        if self.kind in ("sql", "postgres-sql") and not self.statement:
            raise ValueError("a sql tool needs a statement")
        if self.kind == "http" and self.http is None:
            raise ValueError("an http tool needs an http section")
        needs_preview = self.kind != "http"  # an HTTP tool has no table to read: args are shown
        if (
            self.access == "write"
            and self.catalog.approval != "none"
            and not self.preview
            and needs_preview
        ):
            raise ValueError(
                "a write tool that needs approval needs a preview: a select of its target, so "
                "nobody is asked to approve a change that cannot apply"
            )
        if self.access == "read" and self.preview:
            raise ValueError("only write tools have a preview")
        return self

    @property
    def statement_sha256(self) -> str:
        text = (self.statement or "") + "\x00" + (self.preview or "")
        return hashlib.sha256(text.encode()).hexdigest()

    def input_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.parameters},
            "required": [p.name for p in self.parameters if p.is_required],
            "additionalProperties": False,
        }

    def mcp_annotations(self) -> dict[str, Any]:
        declared = self.annotations.model_dump(exclude_none=True)
        base: dict[str, Any] = {
            "readOnlyHint": self.access == "read",
            "destructiveHint": self.access != "read",
            "idempotentHint": self.access == "read",
            "openWorldHint": self.kind == "http",
        }
        if self.title:
            base["title"] = self.title
        return {**base, **declared}


class ToolsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    sources: dict[str, Any] | None = None  # Toolbox files: ignored (the database applied to)
    toolsets: dict[str, Any] | None = None  # Toolbox files: ignored
    tools: dict[str, ToolSpec]
    sha256: str = ""
    path: str = ""


def load(path: Path) -> ToolsFile:
    """Read and validate a tools file; every problem is one ToolFileError naming where it is."""
    try:
        raw_text = path.read_bytes()
    except OSError as exc:
        raise ToolFileError(f"{path}: cannot read it ({exc.strerror})") from None
    return loads(raw_text, str(path))


def loads(raw_text: bytes, where: str = "<tools file>") -> ToolsFile:
    try:
        data = yaml.safe_load(raw_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ToolFileError(f"{where}: not valid YAML{at}: {problem}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tools"), dict) or not data["tools"]:
        raise ToolFileError(f"{where}: needs a mapping `tools:` with at least one tool")
    tools: dict[str, Any] = {}
    for name, body in data["tools"].items():
        if not isinstance(body, dict):
            raise ToolFileError(f"{where}: tool {name!r} must be a mapping")
        for param in body.get("parameters") or []:
            if isinstance(param, dict) and "authServices" in param:
                raise ToolFileError(
                    f"{where}: tool {name!r}: parameter {param.get('name')!r} is bound to a token "
                    "claim (authServices): remove the parameter and use :org_id / :customer_id "
                    "in the statement; tenantgate takes them from the verified session"
                )
        if body.get("kind") == "http":
            from tenantgate.mediator.http_tools import HttpToolSpec
            from tenantgate.mediator.http_tools import ToolFileError as HttpToolFileError

            try:  # the request, projection and limits, checked as the mediator will run them
                body = {**body, "http": HttpToolSpec.from_mapping(str(name), body).stored()}
            except HttpToolFileError as exc:
                raise ToolFileError(f"{where}: {exc}") from None
        try:
            tools[str(name)] = ToolSpec.model_validate({**body, "name": str(name)})
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise ToolFileError(
                f"{where}: tool {name!r}: {loc + ': ' if loc else ''}{first['msg']}"
            ) from None
    try:
        return ToolsFile.model_validate(
            {
                **{k: v for k, v in data.items() if k != "tools"},
                "tools": tools,
                "sha256": hashlib.sha256(raw_text).hexdigest(),
                "path": where,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ToolFileError(
            f"{where}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None
