"""The per-turn gate against a real database: what is read, refused and audited."""

from __future__ import annotations

import pytest

from mediator.gate import Gate
from mediator.tokens import TokenVerifier
from tests.mediator.conftest import OpenFn

pytestmark = pytest.mark.anyio


async def test_allowed_read_returns_only_the_sessions_customer(
        gate: Gate, verifier: TokenVerifier, open_session: OpenFn) -> None:
    s = open_session("Acme")
    out = await gate.call(verifier.verify(s.token), "list_tickets", {})
    subjects = [t["subject"] for t in out["items"]]
    assert subjects and all(x.startswith("Acme:") for x in subjects)
