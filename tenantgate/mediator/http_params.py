"""Tool parameters as the tools file declares them, and the validation of a call's arguments.

The rules of the tools-file contract (the same as cli/toolfile's for SQL tools): strings need
``maxLength`` (``minLength``/``pattern``/``enum`` optional),
integers and numbers need ``minimum`` and ``maximum``; booleans, uuids and dates need nothing
more. A parameter is required unless it has a default or says ``required: false``. Names that
would let a caller pick an identity (``org_id``, ``customer_ref``, ``user_key``...) are refused:
identity comes from the verified session only. Validated arguments are JSON values (uuid and date
as text), ready for a path, a query string or a JSON body.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from tenantgate.mediator.errors import InvalidArguments

__all__ = ["RESERVED_NAMES", "ParameterSpec", "arguments_model", "validate_arguments"]

# A name that would let the caller pick a tenant or an identity (org_id, customer_ref, user_key).
RESERVED_NAMES: Final = re.compile(
    r"(^|_)(org|orgs|organi[sz]ation|tenant|customer|account|user|owner|session|operator|"
    r"connector)(_?ids?|_?ref|_?uuid|_?key)?($|_)"
)
_NAME: Final = r"^[a-z][a-z0-9_]{0,62}$"
_PYTHON_TYPES: Final[dict[str, Any]] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "uuid": uuid.UUID,
    "date": dt.date,
}


class ParameterSpec(BaseModel):
    """One declared parameter."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(pattern=_NAME)
    type: Literal["string", "integer", "number", "boolean", "uuid", "date"]
    description: str = Field(min_length=1, max_length=500)
    required: bool | None = None  # default: required unless it has a default
    default: str | int | float | bool | None = None
    enum: list[str | int] | None = Field(default=None, min_length=1, max_length=200)
    max_length: int | None = Field(default=None, alias="maxLength", ge=1, le=100_000)
    min_length: int | None = Field(default=None, alias="minLength", ge=0, le=100_000)
    pattern: str | None = Field(default=None, max_length=500)
    minimum: int | float | None = None
    maximum: int | float | None = None

    @model_validator(mode="after")
    def _check(self) -> ParameterSpec:
        if RESERVED_NAMES.search(self.name):
            raise ValueError(
                f"parameter {self.name!r} names a tenant or an identity: those come from the "
                "verified session, never from an argument"
            )
        if self.type == "string" and self.max_length is None and self.enum is None:
            raise ValueError(f"string parameter {self.name!r} needs maxLength (or an enum)")
        if self.type in ("integer", "number") and (self.minimum is None or self.maximum is None):
            raise ValueError(f"{self.type} parameter {self.name!r} needs minimum and maximum")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern of {self.name!r} is not a regex: {exc}") from None
        return self

    @property
    def is_required(self) -> bool:
        return self.default is None and self.required is not False

    def annotation(self) -> Any:
        """The pydantic type of this parameter, constraints included."""
        base: Any = _PYTHON_TYPES[self.type]
        kwargs: dict[str, Any] = {"description": self.description or None}
        if self.enum is not None:
            base = Literal.__getitem__(tuple(self.enum))
        elif self.type == "string":
            kwargs.update(
                strict=True,
                max_length=self.max_length,
                min_length=self.min_length,
                pattern=self.pattern,
            )
        elif self.type in ("integer", "number"):
            kwargs.update(strict=self.type == "integer", ge=self.minimum, le=self.maximum)
        elif self.type == "boolean":
            kwargs.update(strict=True)
        constraints = Field(**kwargs)
        return Annotated[base, constraints]


def arguments_model(name: str, parameters: Sequence[ParameterSpec]) -> type[BaseModel]:
    """A pydantic model of a tool's arguments (extra arguments are refused)."""
    fields: dict[str, Any] = {}
    for p in parameters:
        if p.is_required:
            fields[p.name] = (p.annotation(), ...)
        else:
            fields[p.name] = (p.annotation() | None, p.default)
    return create_model(
        f"{name}_In", __config__=ConfigDict(extra="forbid", allow_inf_nan=False), **fields
    )


def validate_arguments(model: type[BaseModel], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validated arguments as JSON values; InvalidArguments (with each problem) otherwise."""
    try:
        parsed = model.model_validate(dict(raw))
    except ValidationError as exc:
        problems = [{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]
        raise InvalidArguments(problems) from None
    return parsed.model_dump(mode="json")
