"""The tools file refuses, at load, every tool that could let an argument pick a tenant or
carry an unbounded value, and rewrites placeholders without touching strings, comments or casts."""

from __future__ import annotations

import pytest

from tenantgate.cli.toolfile import statement as st
from tenantgate.cli.toolfile.spec import Parameter, ToolFileError, loads

GOOD = """
tools:
  list_notes:
    description: Notes.
    parameters:
      - {name: q, type: string, maxLength: 20, description: Text.}
    statement: select 1 from crm.notes where org_id = :org_id and customer_id = :customer_id
    catalog: {scope: read:notes}
"""


def load_with(**changes: str) -> None:
    text = GOOD
    for old, new in changes.items():
        text = text.replace(old.replace("__", " "), new)
    loads(text.encode())


def test_a_well_formed_tool_loads_with_its_input_schema() -> None:
    f = loads(GOOD.encode())
    schema = f.tools["list_notes"].input_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["q"] == {"type": "string", "description": "Text.", "maxLength": 20}
    assert schema["required"] == ["q"]


@pytest.mark.parametrize(
    "name", ["org_id", "customer_id", "tenant", "account_id", "user_id", "customer", "session_key"]
)
def test_a_parameter_that_names_a_tenant_is_refused_at_load(name: str) -> None:
    with pytest.raises(ToolFileError, match="names a tenant"):
        loads(GOOD.replace("name: q,", f"name: {name},").replace(":q", f":{name}").encode())


def test_an_unbounded_string_or_number_is_refused() -> None:
    with pytest.raises(ToolFileError, match="needs maxLength"):
        loads(GOOD.replace(" maxLength: 20,", "").encode())
    with pytest.raises(ToolFileError, match="needs minimum and maximum"):
        loads(GOOD.replace("type: string, maxLength: 20", "type: integer").encode())


def test_a_toolbox_parameter_bound_to_a_token_claim_says_how_to_migrate() -> None:
    text = GOOD.replace(
        "description: Text.}", "description: Text., authServices: [{name: google, field: sub}]}"
    )
    with pytest.raises(ToolFileError, match="use :org_id / :customer_id"):
        loads(text.encode())


def test_a_toolbox_postgres_sql_tool_loads_with_its_kind_and_source() -> None:
    text = GOOD.replace(
        "    description: Notes.",
        "    kind: postgres-sql\n    source: my-pg\n    description: Notes.",
    )
    assert loads(text.encode()).tools["list_notes"].kind == "postgres-sql"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (b"tools: [", "not valid YAML"),
        (b"nothing: here", "needs a mapping `tools:`"),
        (b"tools:\n  x: 3", "must be a mapping"),
        (GOOD.replace("catalog: {scope: read:notes}", "").encode(), "catalog"),
        (GOOD.replace("read:notes", "READ").encode(), "scope"),
        (GOOD.replace("list_notes:", "Bad-Name:").encode(), "lower_snake_case"),
    ],
)
def test_a_broken_tools_file_is_one_clear_error(text: bytes, match: str) -> None:
    with pytest.raises(ToolFileError, match=match):
        loads(text)


def test_a_write_tool_with_approval_needs_a_preview() -> None:
    text = GOOD.replace(
        "    catalog: {scope: read:notes}",
        "    access: write\n    catalog: {scope: write:notes, approval: operator}",
    )
    with pytest.raises(ToolFileError, match="needs a preview"):
        loads(text.encode())


PARAMS = [
    Parameter(name="q", type="string", maxLength=10, description="q"),
    Parameter(name="n", type="integer", minimum=1, maximum=9, description="n"),
]


def test_placeholders_in_strings_comments_casts_and_dollar_quotes_are_left_alone() -> None:
    sql = (
        "select ':q', $$ :n $$, x::text, \"a:q\" -- :q\n"
        "from t where org_id = :org_id and customer_id = :customer_id and a = :q and b = $2"
    )
    out = st.for_function(sql, PARAMS)
    for untouched in ("':q'", "$$ :n $$", "x::text", '"a:q"'):
        assert untouched in out
    assert "-- :q" in out
    assert "org_id = $1 and customer_id = $2" in out
    assert "a = ($3 ->> 'q')" in out
    assert "b = (($3 ->> 'n'))::bigint" in out


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("select 1; select 2", "exactly one statement"),
        ("select :nope", "neither a declared parameter"),
        ("select $3", "does not match a declared parameter"),
        ("select 'open", "unterminated"),
        ("select 1 /* open", "unterminated"),
    ],
)
def test_a_statement_that_is_not_exactly_one_well_formed_statement_is_refused(
    sql: str, match: str
) -> None:
    with pytest.raises(ToolFileError, match=match):
        st.for_function(sql, PARAMS)
