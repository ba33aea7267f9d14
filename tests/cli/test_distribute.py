"""`db distribute` off a Citus cluster, and the policy rewrite it plans (no cluster needed)."""

from __future__ import annotations

import pytest

from tenantgate.cli.citus_plan import NeedsRedesign, without_subselects
from tests.cli.conftest import Invoke


def test_distribute_on_plain_postgresql_says_it_needs_a_citus_coordinator(dba: Invoke) -> None:
    for args in (("db", "distribute"), ("db", "distribute", "--sql")):
        result = dba(*args)
        assert result.exit_code == 1
        assert "not a Citus coordinator" in result.stderr
        assert "citus_add_node" in result.stderr


def test_policy_context_subselects_become_scalar_context_calls() -> None:
    policy = ("((org_id, customer_id) = ( SELECT t.org_id,\n    t.customer_id\n"
              "   FROM tenantgate.current_tenant() t(org_id, customer_id)))")
    assert without_subselects(policy) == (
        "((org_id, customer_id) = ROW(tenantgate.current_org(), tenantgate.current_customer()))")
    assert without_subselects("(org_id = ( SELECT tenantgate.current_org() AS current_org))") == (
        "(org_id = tenantgate.current_org())")


def test_a_policy_subselect_of_anything_else_needs_a_redesign() -> None:
    with pytest.raises(NeedsRedesign, match="sub-select"):
        without_subselects("(org_id IN ( SELECT m.org_id FROM crm.members m))")
