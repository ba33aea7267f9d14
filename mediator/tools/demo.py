"""The demo tools: typed, bounded inputs for the `demo` schema's templates (demo.sql)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from mediator.tools import Tool, load_queries

Q = load_queries(Path(__file__).with_name("demo.sql"))

TicketStatus = Literal["open", "pending", "solved", "closed"]
InvoiceStatus = Literal["open", "paid", "overdue", "refunded", "void"]
Limit = Annotated[int, Field(ge=1, le=50, description="Rows per page (at most 50).")]


class _In(BaseModel):
    # Unknown keys (org_id, customer_id, user, ...) are refused, never used.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        # no text column can hold a NUL or a lone surrogate: refuse them as invalid input
        if isinstance(value, str) and not value.isprintable() and _unstorable(value):
            raise ValueError("text must not contain NUL characters or lone surrogates")
        return value


def _unstorable(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


class NoArgsIn(_In):
    """No arguments: the customer comes from the session."""


class ListTicketsIn(_In):
    status: TicketStatus | None = None
    limit: Limit = 20
    after_ticket_id: Annotated[int, Field(ge=1, le=2**62)] | None = Field(
        default=None, description="Page after this ticket id (the last one of the previous page)."
    )


class SearchTicketsIn(_In):
    query: Annotated[str, StringConstraints(min_length=2, max_length=100)] = Field(
        description="Text to find in ticket subjects (case-insensitive substring)."
    )
    limit: Limit = 20


class ListInvoicesIn(_In):
    status: InvoiceStatus | None = None
    limit: Limit = 20


class UpdateTicketStatusIn(_In):
    ticket_id: Annotated[int, Field(ge=1, le=2**62)]
    status: TicketStatus


class IssueRefundIn(_In):
    invoice_id: Annotated[int, Field(ge=1, le=2**62)]
    amount_cents: Annotated[int, Field(ge=1, le=10_000_000)] = Field(
        description="Amount to refund, in cents of the invoice's currency."
    )


def _tool(
    name: str,
    description: str,
    model: type[BaseModel],
    source: str,
    *,
    many: bool = True,
    read_only: bool = True,
    destructive: bool = False,
    idempotent: bool = True,
    field_sources: dict[str, str] | None = None,
) -> Tool:
    return Tool(
        name=name,
        description=description,
        input_model=model,
        sql=Q[name],
        source=source,
        many=many,
        read_only=read_only,
        destructive=destructive,
        idempotent=idempotent,
        field_sources=field_sources or {},
    )


DEMO_TOOLS: list[Tool] = [
    _tool(
        "get_customer_profile",
        "Contact details of the current customer.",
        NoArgsIn,
        "demo.customer_profiles",
        many=False,
    ),
    _tool(
        "list_tickets",
        "Support tickets of the current customer, newest first.",
        ListTicketsIn,
        "demo.tickets",
    ),
    _tool(
        "search_tickets",
        "Find the current customer's tickets by subject text.",
        SearchTicketsIn,
        "demo.tickets",
    ),
    _tool(
        "list_invoices",
        "Invoices of the current customer, newest first.",
        ListInvoicesIn,
        "demo.invoices",
    ),
    _tool(
        "get_subscription",
        "The current customer's subscription.",
        NoArgsIn,
        "demo.subscriptions",
        many=False,
    ),
    _tool(
        "account_health",
        "Summary: open tickets, overdue invoices, plan, renewal date.",
        NoArgsIn,
        "demo.subscriptions",
        many=False,
        field_sources={
            "open_tickets": "demo.tickets.status",
            "overdue_invoices": "demo.invoices.status",
            "overdue_cents": "demo.invoices.amount_cents",
            "subscription_status": "demo.subscriptions.status",
        },
    ),
    _tool(
        "update_ticket_status",
        "Change the status of one of the customer's tickets.",
        UpdateTicketStatusIn,
        "demo.tickets",
        many=False,
        read_only=False,
        idempotent=True,
    ),
    _tool(
        "issue_refund",
        "Refund part or all of a paid invoice (needs approval).",
        IssueRefundIn,
        "demo.invoices",
        many=False,
        read_only=False,
        destructive=True,
        idempotent=False,
    ),
]
