"""What a tool result may contain: only rows of the session's own customer."""

from __future__ import annotations

from typing import Any

from tenantgate.mediator.demo_data import World

# tool -> arguments used by the reliability runs; every one reads the session's customer only
READS: dict[str, dict[str, Any]] = {
    "list_tickets": {"limit": 20},
    "search_tickets": {"query": "login"},
    "list_invoices": {},
    "get_customer_profile": {},
    "get_subscription": {},
    "account_health": {},
}


def foreign_rows(world: World, customer: str, tool: str, out: Any) -> list[Any]:
    """Rows in `out` (a shaped gate result) that do not belong to `customer`; [] when clean."""
    cust = next(o.customers[customer] for o in world.orgs.values() if customer in o.customers)
    if tool in ("list_tickets", "search_tickets"):
        return [
            r
            for r in out["items"]
            if r["ticket_id"] not in cust.ticket_ids
            or not str(r["subject"]).startswith(f"{customer}:")
        ]
    if tool == "list_invoices":
        return [r for r in out["items"] if r["invoice_id"] not in cust.invoice_ids]
    if tool == "get_customer_profile":
        return [] if out.get("full_name") == f"{customer} Admin" else [out]
    if tool == "get_subscription":
        return [] if out.get("plan") == ("starter" if customer == "Beta" else "business") else [out]
    if tool == "account_health":
        plan = "starter" if customer == "Beta" else "business"
        return [] if out.get("overdue_invoices") == 1 and out.get("plan") == plan else [out]
    raise KeyError(tool)


def expect_rows(tool: str, out: Any) -> bool:
    """True when `out` has the rows every demo customer has for `tool`."""
    if tool in ("list_tickets", "list_invoices"):
        return len(out["items"]) == 3
    if tool == "search_tickets":
        return len(out["items"]) == 1
    return bool(out)
