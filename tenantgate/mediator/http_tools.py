"""``kind: http`` tools: the tools-file entry of a tool that calls the customer's own API.

The common keys (description, parameters, access, returns, annotations, catalog, max_rows,
max_bytes) are a SQL tool's; an ``http:`` mapping replaces the ``statement``
(tools/billing.yaml is an example)::

    http:
      method: GET                       # GET for access: read; POST/PUT/PATCH/DELETE for write
      path: /v1/invoices/{invoice_id}   # under the connector's base URL; {name} = a parameter
      query: {status: status}           # upstream query name -> parameter name
      body: {amount_cents: amount}      # JSON body field -> parameter name (write tools)
      auth: connector                   # the connector's key header, or `bearer` (Authorization)
      items: /payments                  # returns: many -> JSON pointer to the array of items
      fields:                           # the projection: nothing else leaves; a class for each
        - {name: plan, pointer: /plan, class: public}
        - {name: card_last4, pointer: /card/last4, class: sensitive}
      limits: {total_timeout: 8, max_response_bytes: 262144, retries: 2}   # retries: reads only

A path parameter is percent-encoded into one segment; values that are empty, ``.``, ``..`` or hold
``/`` or ``\\`` are refused, so no value can add a segment, a query, a fragment, userinfo or a host.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tenantgate.mediator.errors import InvalidArguments
from tenantgate.mediator.http_params import ParameterSpec, arguments_model, validate_arguments

__all__ = [
    "FieldSpec",
    "HttpLimits",
    "HttpSection",
    "HttpToolSpec",
    "ToolFileError",
    "load_http_tools",
]

_PLACEHOLDER: Final = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_TEMPLATE_TEXT: Final = re.compile(r"[A-Za-z0-9._~/{}-]+")
_POINTER: Final = re.compile(r"(/([^~/]|~[01])*)*")
_READ_METHODS: Final = ("GET",)
_DEFAULT_READ_RETRIES: Final = 2


class ToolFileError(ValueError):
    """the tools file is invalid: fix the named tool and apply it again."""


class FieldSpec(BaseModel):
    """One projected field: where it is in the answer and its data class."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    pointer: str | None = Field(default=None, max_length=500)
    data_class: Literal["public", "internal", "sensitive", "secret"] = Field(alias="class")

    @field_validator("pointer")
    @classmethod
    def _pointer(cls, pointer: str | None) -> str | None:
        if pointer is not None and not _POINTER.fullmatch(pointer):
            raise ValueError(f"{pointer!r} is not a JSON pointer like /card/last4")
        return pointer

    @property
    def path(self) -> list[str]:
        """The pointer's reference tokens (RFC 6901), ``/name`` when none is given."""
        return pointer_tokens(self.pointer if self.pointer is not None else f"/{self.name}")


class HttpLimits(BaseModel):
    """Per-tool timeouts (s), answer size cap (bytes) and retries (reads only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_timeout: float = Field(default=3.0, gt=0, le=30)
    read_timeout: float = Field(default=10.0, gt=0, le=120)
    total_timeout: float = Field(default=15.0, gt=0, le=300)
    max_response_bytes: int = Field(default=1 << 20, ge=1024, le=16 << 20)
    retries: int | None = Field(default=None, ge=0, le=5)  # None: 2 for reads, 0 for writes
    backoff: float = Field(default=0.2, ge=0, le=10)
    max_retry_after: float = Field(default=5.0, ge=0, le=60)


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: str = Field(min_length=1, max_length=100)
    cost: int = Field(default=1, ge=0, le=1_000_000)
    approval: Literal["none", "operator", "host"] = "none"
    rate_limit: dict[str, float] | None = None


class HttpSection(BaseModel):
    """The ``http:`` mapping of a tool: the request, the projection and the limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(max_length=500)
    query: dict[str, str] = Field(default_factory=dict)
    body: dict[str, str] = Field(default_factory=dict)
    auth: Literal["connector", "bearer"] = "connector"
    items: str | None = None
    fields: list[FieldSpec] = Field(min_length=1, max_length=200)
    limits: HttpLimits = Field(default_factory=HttpLimits)

    @model_validator(mode="after")
    def _check(self) -> HttpSection:
        _check_template(self.path)
        if self.body and self.method in _READ_METHODS:
            raise ValueError(f"a {self.method} request carries no body")
        if self.items is not None and not _POINTER.fullmatch(self.items):
            raise ValueError(f"items {self.items!r} is not a JSON pointer like /payments")
        if len({f.name for f in self.fields}) != len(self.fields):
            raise ValueError("field names must be unique")
        return self

    @property
    def placeholders(self) -> list[str]:
        return _PLACEHOLDER.findall(self.path)


class HttpToolSpec(BaseModel):
    """One ``kind: http`` tool, as parsed from its mapping in the tools file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,53}$")
    kind: Literal["http"]
    title: str = Field(default="", max_length=200)
    description: str = Field(min_length=1, max_length=4000)
    parameters: list[ParameterSpec] = Field(default_factory=list, max_length=50)
    access: Literal["read", "write"]
    returns: Literal["one", "many"]
    annotations: dict[str, bool] = Field(default_factory=dict)
    catalog: Catalog
    max_rows: int = Field(default=100, ge=1, le=10_000)
    max_bytes: int = Field(default=64 * 1024, ge=1024, le=16 << 20)
    http: HttpSection
    # Keys every tools-file entry may carry; an HTTP tool keeps them but does not use them.
    output_schema: dict[str, Any] | None = Field(default=None, alias="outputSchema")
    source: str | None = None
    auth_required: list[str] | None = Field(default=None, alias="authRequired")
    # SQL-only keys, accepted empty so that a generic tools-file model's dump reads back.
    statement: None = None
    preview: None = None
    columns: dict[str, str] = Field(default_factory=dict, max_length=0)

    @classmethod
    def from_mapping(cls, name: str, mapping: Mapping[str, Any]) -> HttpToolSpec:
        """Parse one tool's mapping; ToolFileError names the tool and every problem."""
        try:
            return cls.model_validate({**mapping, "name": name})
        except ValidationError as exc:
            problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
            raise ToolFileError(f"tool {name!r}: {problems}") from None

    def stored(self) -> dict[str, Any]:
        """The mapping to store (tool_definitions.spec); from_mapping reads it back as is."""
        return self.model_dump(mode="json", by_alias=True, exclude={"name"}, exclude_none=True)

    @model_validator(mode="after")
    def _check(self) -> HttpToolSpec:
        http = self.http
        declared = {p.name for p in self.parameters}
        if len(declared) != len(self.parameters):
            raise ValueError("parameter names must be unique")
        used = [*http.placeholders, *http.query.values(), *http.body.values()]
        if unknown := sorted(set(used) - declared):
            raise ValueError(f"http path, query or body name undeclared parameters {unknown}")
        if unused := sorted(declared - set(used)):
            raise ValueError(f"parameters {unused} are never sent upstream")
        if (self.access == "read") != (http.method in _READ_METHODS):
            raise ValueError("access: read goes with GET, access: write with other methods")
        if self.access == "write" and http.limits.retries:
            raise ValueError("side effects are never retried: remove http.limits.retries")
        if (self.returns == "many") != (http.items is not None):
            raise ValueError(
                "returns: many needs http.items (a pointer to the array); one has none"
            )
        return self

    @property
    def side_effect(self) -> bool:
        return self.access == "write"

    @property
    def retries(self) -> int:
        """How often a failed call is tried again: never for a side effect."""
        if self.access == "write":
            return 0
        retries = self.http.limits.retries
        return _DEFAULT_READ_RETRIES if retries is None else retries

    @cached_property
    def arguments_model(self) -> type[BaseModel]:
        return arguments_model(self.name, self.parameters)

    def validate_arguments(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The call's arguments, validated against the declared parameters."""
        return validate_arguments(self.arguments_model, raw)

    def render_path(self, args: Mapping[str, Any]) -> str:
        """The path with each placeholder replaced by its percent-encoded value (one segment)."""

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            value = args.get(name)
            text = _text(value)
            if value is None or text in ("", ".", "..") or "/" in text or "\\" in text:
                raise InvalidArguments(
                    [{"loc": (name,), "msg": "must be a non-empty value without '/' or '\\'"}]
                )
            return urllib.parse.quote(text, safe="")

        return _PLACEHOLDER.sub(one, self.http.path)

    def render_query(self, args: Mapping[str, Any]) -> dict[str, str]:
        query = self.http.query
        return {k: _text(args[p]) for k, p in query.items() if args.get(p) is not None}

    def render_body(self, args: Mapping[str, Any]) -> dict[str, Any] | None:
        if not self.http.body:
            return None
        return {k: args[p] for k, p in self.http.body.items() if args.get(p) is not None}


def _check_template(path: str) -> None:
    if not path.startswith("/") or path.startswith("//") or not _TEMPLATE_TEXT.fullmatch(path):
        raise ValueError(f"path {path!r} must be /plain/segments/{{param}} (no ?, #, %, @, \\)")
    if any(seg in (".", "..") for seg in path.split("/")):
        raise ValueError(f"path {path!r} must not hold '.' or '..' segments")
    if _PLACEHOLDER.sub("", path).count("{") or _PLACEHOLDER.sub("", path).count("}"):
        raise ValueError(f"path {path!r} has a malformed placeholder")


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    return f"{'.'.join(str(p) for p in loc)}: {message}" if loc else message


def pointer_tokens(pointer: str) -> list[str]:
    """The reference tokens of a JSON pointer (RFC 6901); ``""`` is the whole document."""
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def load_http_tools(text: str) -> dict[str, HttpToolSpec]:
    """The ``kind: http`` tools of a tools file (other kinds are left to their own loader)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ToolFileError(f"the tools file is not valid YAML: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != 1:
        raise ToolFileError("a tools file is a mapping with `version: 1` and `tools:`")
    tools = document.get("tools")
    if not isinstance(tools, dict):
        raise ToolFileError("`tools:` must map each tool name to its definition")
    return {
        name: HttpToolSpec.from_mapping(str(name), spec)
        for name, spec in tools.items()
        if isinstance(spec, dict) and spec.get("kind") == "http"
    }
