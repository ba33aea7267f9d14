"""A tools/call is ONE round trip and one statement (tenantgate.call_tool); tools/list too."""

from __future__ import annotations

from typing import Any

import pytest

from tenantgate.mediator.db import make_pool
from tenantgate.mediator.demo_data import World
from tenantgate.mediator.gate import Gate
from tenantgate.mediator.roundtrips import traced
from tenantgate.mediator.tokens import TokenVerifier
from tests.mediator.conftest import OpenFn

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("prepare_threshold", [0, None], ids=["prepared", "pgbouncer"])
async def test_a_tool_call_is_one_round_trip_and_one_statement(
    settings: Any,
    world: World,
    verifier: TokenVerifier,
    open_session: OpenFn,
    prepare_threshold: int | None,
) -> None:
    s = settings.model_copy(
        update={"prepare_threshold": prepare_threshold, "statement_timeout_ms": 0}
    )
    pool = make_pool(s, min_size=1, max_size=1)
    await pool.open(wait=True)
    try:
        gate = Gate(pool, s)
        claims = verifier.verify(open_session("Acme").token)
        await gate.call(claims, "list_tickets", {})  # warm: statements prepared
        await gate.list_tools(claims)
        for tool in ("list_tickets", "account_health", "get_customer_profile"):
            async with traced(pool) as rt:
                await gate.call(claims, tool, {})
            assert (rt.count, rt.syncs) == (1, 1), (tool, rt.count, rt.syncs)
        async with traced(pool) as rt:
            await gate.list_tools(claims)
        assert (rt.count, rt.syncs) == (1, 1)
    finally:
        await pool.close()
