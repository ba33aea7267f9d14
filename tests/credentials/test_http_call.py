"""The kind: http executor against the fake billing API on loopback, real sockets, real HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tenantgate.mediator import errors as E
from tenantgate.mediator.fake_upstream import FakeBilling, Fault, key_id
from tenantgate.mediator.http_call import HttpOutcome
from tenantgate.mediator.keys import Secret
from tenantgate.mediator.upstream import UpstreamClient
from tests.credentials.http_world import (
    ACCOUNTS,
    ACME_KEY,
    BETA_KEY,
    INJECTION,
    TOOLS,
    call,
    egress_for,
    tool,
)

STATUS = TOOLS["get_billing_status"]
PAYMENTS = TOOLS["list_payments"]
CREDIT = TOOLS["create_credit_note"]


@pytest.fixture
def fake() -> Iterator[FakeBilling]:
    with FakeBilling(ACCOUNTS) as server:
        yield server


def run(coro: Any) -> HttpOutcome:
    return asyncio.run(coro)  # type: ignore[no-any-return]


def fails(coro: Any) -> E.HttpToolFailed:
    try:
        asyncio.run(coro)
    except E.HttpToolFailed as exc:
        return exc
    raise AssertionError("the call should have failed")


def test_each_customer_gets_its_own_billing_status_with_its_own_key(fake: FakeBilling) -> None:
    acme = run(call(fake, STATUS, key=ACME_KEY))
    beta = run(call(fake, STATUS, key=BETA_KEY))
    assert (acme.result["customer"], beta.result["customer"]) == ("Acme", "Beta")
    assert [r.key_id for r in fake.received] == [
        key_id(ACME_KEY.reveal()),
        key_id(BETA_KEY.reveal()),
    ]
    assert (acme.status, acme.attempts, acme.bytes > 0) == (200, 1, True)


def test_sensitive_fields_are_masked_unless_a_scope_allows_them(fake: FakeBilling) -> None:
    masked = run(call(fake, STATUS)).result
    assert masked["billing_email"] == "a***@acme.example"
    assert masked["card_last4"] == "***"
    assert masked["_masked"] == ["billing_email", "card_last4"]
    shown = run(call(fake, STATUS, scopes=["read:billing", "read:billing:sensitive"])).result
    assert (shown["billing_email"], shown["card_last4"]) == ("ap@acme.example", "4242")
    assert "_masked" not in shown


def test_only_declared_fields_leave_and_secret_ones_never(fake: FakeBilling) -> None:
    status = run(call(fake, STATUS, scopes=["read:billing", "read:billing:sensitive"])).result
    assert set(status) == {f.name for f in STATUS.http.fields}  # no risk_score, no card expiry
    listed = run(call(fake, PAYMENTS, scopes=["read:billing", "read:billing:sensitive"])).result
    for item in listed["items"]:
        assert "processor_token" not in item  # declared secret: dropped even for this scope
        assert "internal_ref" not in item  # undeclared: never projected
    assert "tok_acme" not in repr(listed)


def test_query_parameters_reach_the_upstream_and_filter(fake: FakeBilling) -> None:
    listed = run(call(fake, PAYMENTS, {"status": "failed", "limit": 5})).result
    assert fake.received[0].query == {"status": ["failed"], "limit": ["5"]}
    assert [p["payment_id"] for p in listed["items"]] == ["acme_pay_2"]


def test_row_cap_truncates_the_result(fake: FakeBilling) -> None:
    listed = run(call(fake, tool("list_payments", max_rows=2))).result
    assert len(listed["items"]) == 2
    assert listed["truncated"] is True


def test_prompt_injection_in_upstream_data_comes_back_as_data(fake: FakeBilling) -> None:
    result = run(call(fake, STATUS)).result
    assert result["notes"] == INJECTION  # verbatim, as one string value of one declared field
    assert set(result) == {f.name for f in STATUS.http.fields} | {"_masked"}
    assert [r.method for r in fake.received] == ["GET"]  # nothing acted on it
    assert fake.credit_notes(ACME_KEY.reveal()) == []


def test_an_echoed_key_is_scrubbed_from_the_result(fake: FakeBilling) -> None:
    echo = tool(
        "get_billing_status",
        fields=[{"name": "customer", "class": "public"}, {"name": "debug", "class": "public"}],
    )
    fake.inject("/v1/billing/status", Fault(echo_key=True))
    result = run(call(fake, echo)).result
    assert result["debug"] == "auth was Bearer [redacted]"
    assert ACME_KEY.reveal() not in repr(result)


def test_a_4xx_is_a_clear_error_and_is_not_retried(fake: FakeBilling) -> None:
    fake.inject("/v1/billing/status", Fault(status=404))
    failure = fails(call(fake, STATUS))
    assert isinstance(failure, E.UpstreamRejected)
    assert (failure.status, failure.attempts) == (404, 1)
    assert "get_billing_status: the upstream refused the request (HTTP 404)" in str(failure)
    assert len(fake.received) == 1


def test_a_refused_key_says_what_to_do_and_never_shows_the_key(fake: FakeBilling) -> None:
    wrong = Secret("sk_live_wrong_00000000000000000000000000")
    failure = fails(call(fake, STATUS, key=wrong))
    assert isinstance(failure, E.UpstreamRejected)
    assert "`tenantgate secrets set`" in str(failure)
    assert wrong.reveal() not in str(failure) + repr(failure)
    assert failure.__cause__ is None
    assert failure.__context__ is None


def test_a_5xx_on_a_read_is_retried_then_reported(fake: FakeBilling) -> None:
    fake.inject("/v1/billing/status", *[Fault(status=503)] * 3)
    failure = fails(call(fake, STATUS))
    assert isinstance(failure, E.UpstreamUnavailable)
    assert (failure.status, failure.attempts) == (503, 3)  # 1 + limits.retries (2)
    assert "HTTP 503" in str(failure)
    assert len(fake.received) == 3


def test_a_read_waits_for_retry_after_then_succeeds(fake: FakeBilling) -> None:
    fake.inject("/v1/billing/status", Fault(status=429, retry_after="1"))
    started = time.perf_counter()
    outcome = run(call(fake, STATUS))
    assert time.perf_counter() - started >= 0.95  # waited the second it was asked to
    assert (outcome.attempts, outcome.result["customer"]) == (2, "Acme")


def test_a_retry_after_beyond_the_tools_limit_is_not_waited_for(fake: FakeBilling) -> None:
    fake.inject("/v1/billing/status", Fault(status=503, retry_after="120"))
    started = time.perf_counter()
    failure = fails(call(fake, STATUS))
    assert time.perf_counter() - started < 2
    assert (type(failure), failure.attempts) == (E.UpstreamUnavailable, 1)


def test_a_side_effect_is_never_retried_on_5xx(fake: FakeBilling) -> None:
    fake.inject("/v1/credit_notes", Fault(status=503, retry_after="0"))
    failure = fails(call(fake, CREDIT, {"amount_cents": 500, "reason": "outage"}))
    assert (type(failure), failure.attempts) == (E.UpstreamUnavailable, 1)
    assert [r.method for r in fake.received] == ["POST"]


def test_a_side_effect_is_never_retried_on_timeout(fake: FakeBilling) -> None:
    slow = tool("create_credit_note", limits={"read_timeout": 0.3, "total_timeout": 0.5})
    fake.inject("/v1/credit_notes", Fault(delay=1.0))
    failure = fails(call(fake, slow, {"amount_cents": 500, "reason": "outage"}))
    assert (type(failure), failure.attempts) == (E.UpstreamTimeout, 1)
    assert len(fake.received) == 1
    assert CREDIT.retries == 0


def test_a_side_effect_tool_that_asks_for_retries_is_refused() -> None:
    from tenantgate.mediator.http_tools import ToolFileError

    with pytest.raises(ToolFileError, match="side effects are never retried"):
        tool("create_credit_note", limits={"retries": 1})


def test_a_side_effect_sends_its_body_and_idempotency_key(fake: FakeBilling) -> None:
    args = {"amount_cents": 2500, "reason": "late delivery"}
    first = run(call(fake, CREDIT, args, idempotency_key="req-1"))
    again = run(call(fake, CREDIT, args, idempotency_key="req-1"))
    assert first.status == 201
    assert first.result == again.result
    assert first.result["status"] == "issued"
    (note,) = fake.credit_notes(ACME_KEY.reveal())
    assert note["amount_cents"] == 2500
    assert fake.received[0].body == args
    assert fake.received[0].headers["idempotency-key"] == "req-1"


def test_a_slow_read_is_a_clear_timeout(fake: FakeBilling) -> None:
    slow = tool("get_billing_status", limits={"read_timeout": 0.3, "total_timeout": 0.8})
    fake.inject("/v1/billing/status", *[Fault(delay=1.0)] * 3)
    failure = fails(call(fake, slow))
    assert isinstance(failure, E.UpstreamTimeout)
    assert "did not answer within the time limit" in str(failure)


def test_an_oversize_streamed_answer_is_cut_off(fake: FakeBilling) -> None:
    capped = tool("get_billing_status", limits={"max_response_bytes": 262144})
    fake.inject("/v1/billing/status", Fault(stream_bytes=64 << 20))
    started = time.perf_counter()
    failure = fails(call(fake, capped))
    assert isinstance(failure, E.UpstreamTooLarge)
    assert "262144-byte limit" in str(failure)
    assert time.perf_counter() - started < 5  # stopped at the cap, not after 64 MiB


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a?b=1", "a%3Fb%3D1"),
        ("a#frag", "a%23frag"),
        ("user@evil.example", "user%40evil.example"),
        ("%2e%2e", "%252e%252e"),
        ("..%2fadmin", "..%252fadmin"),
        ("in v\u00f8ice", "in%20v%C3%B8ice"),
    ],
)
def test_a_path_parameter_stays_one_segment_under_the_base_path(
    fake: FakeBilling, value: str, encoded: str
) -> None:
    invoice = invoice_tool()
    result = run(call(fake, invoice, {"invoice_id": value})).result
    assert result == {"invoice_id": value}  # the upstream decoded exactly one segment
    (received,) = fake.received
    assert received.path == f"/v1/invoices/{encoded}"
    assert received.query == {}
    assert received.headers["host"] == f"127.0.0.1:{fake.port}"


@pytest.mark.parametrize("value", ["../admin", "..", ".", "//evil.example", "a/b", "a\\b", ""])
def test_a_path_parameter_that_could_add_a_segment_is_refused_before_any_call(
    fake: FakeBilling, value: str
) -> None:
    decrypted: list[bool] = []

    def key() -> Secret:
        decrypted.append(True)
        return ACME_KEY

    with pytest.raises(E.InvalidArguments, match="invoice_id"):
        run(call(fake, invoice_tool(), {"invoice_id": value}, key=key))
    assert fake.received == []
    assert decrypted == []


def test_the_path_stays_under_a_base_path(fake: FakeBilling) -> None:
    failure = fails(
        call(fake, invoice_tool(), {"invoice_id": "x"}, base_url=f"{fake.base_url}/tenants/a/")
    )
    assert failure.status == 404
    assert fake.received[0].path == "/tenants/a/v1/invoices/x"


def invoice_tool() -> Any:
    return tool(
        "get_billing_status",
        path="/v1/invoices/{invoice_id}",
        parameters=[
            {"name": "invoice_id", "type": "string", "maxLength": 100, "description": "Its id."}
        ],
        fields=[{"name": "invoice_id", "class": "public"}],
    )


def test_no_key_in_results_logs_or_errors(
    fake: FakeBilling, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    fake.inject("/v1/billing/status", Fault(echo_key=True), Fault(status=500), Fault(status=400))
    echo = tool("get_billing_status", fields=[{"name": "debug", "class": "public"}])
    shown.append(repr(run(call(fake, echo))))
    for spec, key in [(STATUS, ACME_KEY), (STATUS, BETA_KEY), (PAYMENTS, BETA_KEY)]:
        try:
            shown.append(repr(run(call(fake, spec, key=key))))
        except E.MediatorError as exc:
            shown += [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
    assert any("HTTP 500" in s for s in shown)
    assert any("[redacted]" in s for s in shown)
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert f"key_id={key_id(ACME_KEY.reveal())}" in logged  # the fake logs key ids...
    assert "http tool get_billing_status" in logged
    for key in (ACME_KEY, BETA_KEY):  # ...and nobody logs or returns a key
        assert key.reveal() not in logged
        assert key.reveal() not in "\n".join(shown)


def test_32_interleaved_calls_of_two_customers_each_use_only_their_own_key(
    fake: FakeBilling,
) -> None:
    who = ["acme", "beta"] * 16
    keys = {"acme": ACME_KEY, "beta": BETA_KEY}

    async def all_at_once() -> list[HttpOutcome]:
        async with UpstreamClient(egress_for(fake)) as client:  # one shared pool, as in the gate
            calls = [
                call(fake, STATUS, key=lambda name=name: keys[name], client=client)  # type: ignore[misc]
                for name in who
            ]
            return list(await asyncio.gather(*calls))

    outcomes = asyncio.run(all_at_once())
    assert [o.result["customer"].lower() for o in outcomes] == who
    received = fake.received
    assert len(received) == 32
    for request in received:
        carried = [k for k in keys.values() if k.reveal() in repr(request)]
        assert len(carried) == 1  # exactly one key per request, never both
    ids = [r.key_id for r in received]
    assert ids.count(key_id(ACME_KEY.reveal())) == ids.count(key_id(BETA_KEY.reveal())) == 16


def test_a_key_that_does_not_decrypt_is_a_clear_error_before_any_call(fake: FakeBilling) -> None:
    from tenantgate.mediator import secrets as customer_secrets
    from tenantgate.mediator.keys import FileKeyProvider, generate_key_material

    sealed_with = FileKeyProvider({"k1": generate_key_material()}, "k1")
    other = FileKeyProvider({"k1": generate_key_material(), "k2": generate_key_material()}, "k1")
    ciphertext, _ = customer_secrets.seal(ACME_KEY, sealed_with)
    for stored_id in ("k1", "k9"):  # wrong material, then a key id nobody configured

        def unseal(stored_id: str = stored_id) -> Secret:
            return customer_secrets.unseal(ciphertext, stored_id, other)

        failure = fails(call(fake, STATUS, key=unseal))
        assert isinstance(failure, E.CredentialUnreadable)
        assert "tenantgate secrets check" in str(failure)
        assert failure.__context__ is None
    assert fake.received == []


def test_injected_instructions_from_the_upstream_are_returned_not_followed(
    fake: FakeBilling,
) -> None:
    from tenantgate.mediator.fake_upstream import PROMPT_INJECTION

    fake.inject("/v1/billing/status", Fault(injection=True))
    result = run(call(fake, STATUS)).result
    assert result["customer"] == "Acme"
    assert result["plan"] == result["notes"] == PROMPT_INJECTION
    assert result["billing_email"] == "***" + PROMPT_INJECTION[-4:]  # masked like any value
    assert [r.method for r in fake.received] == ["GET"]


def test_one_object_over_the_result_byte_cap_is_an_error_not_an_empty_result() -> None:
    account = ACCOUNTS[ACME_KEY.reveal()]
    long_ids = [{**p, "payment_id": p["payment_id"] * 60} for p in account["payments"]]
    wordy = {ACME_KEY.reveal(): {**account, "notes": "n" * 4096, "payments": long_ids}}
    with FakeBilling(wordy) as fake:
        failure = fails(call(fake, tool("get_billing_status", max_bytes=1024)))
        listed = run(call(fake, tool("list_payments", max_bytes=1024))).result
    assert isinstance(failure, E.UpstreamTooLarge)
    assert "1024-byte limit" in str(failure)
    assert listed["truncated"] is True  # a list is cut, and says so
    assert 0 < len(listed["items"]) < 3
