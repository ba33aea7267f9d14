"""The demo's billing upstream answers the example tools for each customer with its own key."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tenantgate.mediator.demo_billing import start_demo_billing
from tenantgate.mediator.fake_upstream import PROMPT_INJECTION
from tenantgate.mediator.upstream import EgressPolicy, UpstreamClient
from tests.credentials.http_world import TOOLS, call


def test_each_demo_customer_is_answered_with_its_own_key_and_logged_by_key_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    billing = start_demo_billing(["Acme", "Beta"])
    try:
        assert billing.keys["Acme"] != billing.keys["Beta"]

        async def both() -> list[str]:
            async with UpstreamClient(EgressPolicy.parse(billing.egress_allow)) as client:
                answers = []
                for name in ("Acme", "Beta"):
                    status = await call(
                        billing.fake, TOOLS["get_billing_status"], key=billing.keys[name],
                        client=client,
                    )  # fmt: skip
                    payments = await call(
                        billing.fake, TOOLS["list_payments"], {"limit": 3},
                        key=billing.keys[name], client=client,
                    )  # fmt: skip
                    assert len(payments.result["items"]) == 3
                    answers.append(str(status.result["customer"]))
                    if name == "Acme":
                        assert status.result["notes"] == PROMPT_INJECTION
                return answers

        assert asyncio.run(both()) == ["Acme", "Beta"]
        logged = caplog.text
        for name in ("Acme", "Beta"):
            assert f"key_id={billing.key_ids[name]}" in logged
            assert billing.keys[name].reveal() not in logged
    finally:
        billing.stop()
