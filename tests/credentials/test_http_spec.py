"""The kind: http section of a tools file: what is accepted, what is refused, and why."""

from __future__ import annotations

from typing import Any

import pytest

from tenantgate.mediator.errors import InvalidArguments
from tenantgate.mediator.http_tools import HttpSection, HttpToolSpec, ToolFileError, load_http_tools
from tests.credentials.http_world import REPO, TOOLS


def spec(**changes: Any) -> dict[str, Any]:
    """A minimal valid read tool, with changes."""
    base: dict[str, Any] = {
        "kind": "http",
        "description": "An invoice of the current customer.",
        "parameters": [
            {"name": "invoice_id", "type": "string", "maxLength": 40, "description": "Its id."}
        ],
        "http": {
            "method": "GET",
            "path": "/v1/invoices/{invoice_id}",
            "fields": [{"name": "invoice_id", "class": "public"}],
        },
        "access": "read",
        "returns": "one",
        "catalog": {"scope": "read:billing"},
    }
    for key, value in changes.items():
        if key in HttpSection.model_fields:
            base["http"][key] = value
        else:
            base[key] = value
    return base


def test_the_example_tools_file_loads_and_round_trips() -> None:
    assert set(TOOLS) == {"get_billing_status", "list_payments", "create_credit_note"}
    for name, tool in TOOLS.items():
        assert HttpToolSpec.from_mapping(name, tool.stored()) == tool  # tool_definitions.spec
    assert TOOLS["create_credit_note"].catalog.approval == "operator"
    assert (TOOLS["list_payments"].retries, TOOLS["create_credit_note"].retries) == (2, 0)


def test_other_kinds_are_left_to_their_own_loader() -> None:
    text = (REPO / "tools" / "billing.yaml").read_text() + (
        "  list_tickets:\n    kind: sql\n    statement: select 1\n"
    )
    assert set(load_http_tools(text)) == set(TOOLS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"path": "/v1/{invoice_id}/../admin"}, "'..'"),
        ({"path": "/v1/invoices/{invoice_id}?x=1"}, "no \\?"),
        ({"path": "//evil.example/{invoice_id}"}, "plain/segments"),
        ({"path": "/v1/invoices/{invoice_id}@x"}, "plain/segments"),
        ({"path": "/v1/invoices/%2e%2e/{invoice_id}"}, "plain/segments"),
        ({"path": "/v1/invoices/{other}"}, "undeclared parameters \\['other'\\]"),
        ({"path": "/v1/invoices"}, "never sent upstream"),
        ({"method": "POST"}, "access: read goes with GET"),
        ({"access": "write", "limits": {"retries": 1}, "method": "POST"}, "never retried"),
        ({"statement": "select 1"}, "statement"),
        ({"columns": {"x": "demo.t.x"}}, "columns"),
        ({"parameters": [{"name": "invoice_id", "type": "string", "maxLength": 9}]}, "description"),
        ({"returns": "many"}, "needs http.items"),
        ({"fields": [{"name": "x", "pointer": "no-slash", "class": "public"}]}, "JSON pointer"),
        ({"fields": [{"name": "x", "class": "confidential"}]}, "class"),
        ({"parameters": [{"name": "customer_id", "type": "uuid", "description": "x"}]}, "tenant"),
        ({"parameters": [{"name": "account_ref", "type": "uuid", "description": "x"}]}, "tenant"),
        (
            {"parameters": [{"name": "invoice_id", "type": "string", "description": "x"}]},
            "maxLength",
        ),
        (
            {"parameters": [{"name": "invoice_id", "type": "integer", "description": "x"}]},
            "minimum and maximum",
        ),
        ({"url": "https://elsewhere.example"}, "Extra inputs"),
        ({"limits": {"max_response_bytes": 1 << 30}}, "max_response_bytes"),
    ],
)
def test_a_dangerous_or_malformed_tool_is_refused_with_its_name(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolFileError, match=message) as caught:
        HttpToolSpec.from_mapping("get_invoice", spec(**changes))
    assert "tool 'get_invoice'" in str(caught.value)


def test_a_tools_file_that_is_not_version_1_is_refused() -> None:
    for text in ("tools: {}", "version: 2\ntools: {}", "- a list", "version: 1\ntools: [x]", "{"):
        with pytest.raises(ToolFileError):
            load_http_tools(text)


def test_arguments_are_validated_strictly() -> None:
    tool = TOOLS["list_payments"]
    assert tool.validate_arguments({}) == {"status": None, "limit": 20}
    for bad in ({"limit": "5"}, {"limit": 51}, {"limit": True}, {"status": "open"}, {"x": 1}):
        with pytest.raises(InvalidArguments):
            tool.validate_arguments(bad)


def test_path_values_are_encoded_into_one_segment() -> None:
    tool = HttpToolSpec.from_mapping("get_invoice", spec())
    assert tool.render_path({"invoice_id": "a b?c#d@e%f"}) == "/v1/invoices/a%20b%3Fc%23d%40e%25f"
    for value in ("..", ".", "", "a/b", "\\"):
        with pytest.raises(InvalidArguments):
            tool.render_path({"invoice_id": value})


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    import email.utils
    import time

    from tenantgate.mediator.http_call import _retry_after_seconds

    assert _retry_after_seconds("3") == 3.0
    assert _retry_after_seconds(None) is None
    assert _retry_after_seconds("soon") is None
    assert _retry_after_seconds("-1") is None
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= (_retry_after_seconds(in_ten) or 0) <= 10
    assert _retry_after_seconds(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0
