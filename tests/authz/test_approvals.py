"""The approvals page: an org's operators see its pending approvals and decide, never their own."""

from __future__ import annotations

import re

import httpx

from tests.authz.helpers import get_code, redeem, register, rpc
from tests.authz.stack import Browser, Stack, parse_form
from tests.pg import TestDatabase


def _pending_refund(stack: Stack, browser: Browser) -> str:
    """csm@northwind asks for a refund through the mediator; returns the approval id."""
    client_id = register(stack)
    code, verifier = get_code(stack, browser, client_id)
    access = redeem(stack, client_id, code, verifier).json()["access_token"]
    invoice = stack.world.northwind.customers["Acme"].invoice_ids[0]
    r = rpc(stack, access, "tools/call",
            {"name": "issue_refund", "arguments": {"invoice_id": invoice, "amount_cents": 2500}})
    text = " ".join(c.get("text", "") for c in r.json()["result"]["content"])
    found = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)
    assert found, text
    return found.group(0)


def _approvals_page(stack: Stack, email: str) -> tuple[Browser, httpx.Response]:
    b = Browser()
    page = b.login(b.http.get(f"{stack.as_url}/approvals"), email, "never:")
    assert isinstance(page, httpx.Response)
    assert "Pending approvals" in page.text
    return b, page


def _status(db: TestDatabase, approval_id: str) -> str:
    with db.connect() as conn:
        row = conn.execute("select status from tenantgate.approvals where approval_id = %s",
                           (approval_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_another_operator_of_the_org_sees_the_request_and_approves_it(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    approval_id = _pending_refund(stack, browser)
    lead, page = _approvals_page(stack, "lead@northwind.example")
    assert "issue_refund" in page.text
    assert "Acme" in page.text
    assert "2500" in page.text
    form = parse_form(page.text)
    assert approval_id in form.action
    r = lead.http.post(str(page.url.join(form.action)),
                       data={**form.fields, "decision": "approve"})
    assert r.status_code == 200
    assert "Approved." in r.text
    assert _status(database, approval_id) == "approved"
    lead.close()


def test_the_requester_sees_their_own_request_without_buttons(
    stack: Stack, browser: Browser
) -> None:
    _pending_refund(stack, browser)
    own, page = _approvals_page(stack, "csm@northwind.example")
    assert "issue_refund" in page.text
    assert "another operator decides" in page.text
    assert "name=decision" not in page.text
    own.close()


def test_an_operator_of_another_org_sees_nothing_and_cannot_decide(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    approval_id = _pending_refund(stack, browser)
    other, page = _approvals_page(stack, "csm@globex.example")
    assert "issue_refund" not in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is None  # no form at all on an empty page
    r = other.http.post(f"{stack.as_url}/approvals/{approval_id}",
                        data={"csrf": "x", "decision": "approve"})
    assert r.status_code == 403
    assert _status(database, approval_id) == "pending"
    other.close()


def test_decision_without_the_pages_csrf_token_changes_nothing(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    approval_id = _pending_refund(stack, browser)
    lead, _page = _approvals_page(stack, "lead@northwind.example")
    r = lead.http.post(f"{stack.as_url}/approvals/{approval_id}",
                       data={"csrf": "forged", "decision": "approve"})
    assert r.status_code == 403
    assert _status(database, approval_id) == "pending"
    lead.close()


def test_the_page_shows_the_preview_of_the_target_once_approvals_carry_one(
    stack: Stack, browser: Browser, database: TestDatabase
) -> None:
    approval_id = _pending_refund(stack, browser)
    with database.connect() as conn:  # the column issue 9 adds; read through to_jsonb until then
        conn.execute("alter table tenantgate.approvals add column if not exists preview jsonb")
        conn.execute("update tenantgate.approvals set preview = %s::jsonb where approval_id = %s",
                     ('{"invoice_id": 1, "amount_cents": 9900, "status": "paid"}', approval_id))
    lead, page = _approvals_page(stack, "lead@northwind.example")
    assert "Target now" in page.text
    assert "9900" in page.text
    lead.close()
