"""The demo's billing upstream: the fake billing API on loopback with one fresh key per customer.

    billing = start_demo_billing(["Acme", "Beta"])     # serving on http://127.0.0.1:<port>
    billing.base_url, billing.egress_allow             # connector base URL, TENANTGATE_EGRESS_ALLOW
    billing.keys["Acme"]                               # a Secret: seal it with `secrets set`
    billing.key_ids["Acme"]                            # what the fake logs instead of the key
    billing.stop()

Each account answers the tools in tools/billing.yaml (status, payments, credit notes). The first
customer's notes hold prompt-injection text, so the demo can show it coming back as data.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tenantgate.mediator.fake_upstream import PROMPT_INJECTION, FakeBilling, key_id
from tenantgate.mediator.keys import Secret

__all__ = ["DemoBilling", "demo_account", "start_demo_billing"]

_PLANS = ("enterprise", "starter", "growth", "pro")


@dataclass
class DemoBilling:
    """A running fake billing API and each demo customer's key."""

    fake: FakeBilling
    keys: dict[str, Secret]

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    @property
    def egress_allow(self) -> str:
        """The TENANTGATE_EGRESS_ALLOW entry naming this loopback upstream explicitly."""
        return self.fake.base_url

    @property
    def key_ids(self) -> dict[str, str]:
        return {name: key_id(key.reveal()) for name, key in self.keys.items()}

    def stop(self) -> None:
        self.fake.stop()


def demo_account(name: str, number: int, *, notes: str | None = None) -> dict[str, Any]:
    """Billing data for one demo customer (deterministic, so narrations can quote it)."""
    slug = name.lower().replace(" ", "-")
    return {
        "customer": name,
        "plan": _PLANS[number % len(_PLANS)],
        "status": "active" if number % 2 == 0 else "past_due",
        "currency": "EUR",
        "balance_cents": 120_000 - 62_250 * number,
        "notes": notes if notes is not None else f"{name} renews in March",
        "billing_email": f"billing@{slug}.example",
        "card": {"last4": f"{4242 + number * 1111 % 10000:04d}"[-4:], "exp": "12/29"},
        "payments": [
            {
                "payment_id": f"pay_{slug}_{n}",
                "created_at": f"2026-{12 - n:02d}-01T09:00:00Z",
                "status": "failed" if (n + number) % 4 == 0 else "succeeded",
                "currency": "EUR",
                "amount_cents": 49_00 * (n + 1),
                "card": {"last4": f"{4242 + number * 1111 % 10000:04d}"[-4:]},
                "processor_token": f"tok_{secrets.token_hex(8)}",
            }
            for n in range(5)
        ],
    }


def start_demo_billing(customers: Sequence[str], *, port: int = 0) -> DemoBilling:
    """Start the fake billing API with a fresh key for each customer (different for each)."""
    keys = {name: Secret(f"sk_demo_{secrets.token_urlsafe(24)}") for name in customers}
    accounts = {
        keys[name].reveal(): demo_account(name, i, notes=PROMPT_INJECTION if i == 0 else None)
        for i, name in enumerate(customers)
    }
    return DemoBilling(FakeBilling(accounts, port=port).start(), keys)
