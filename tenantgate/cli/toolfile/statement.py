"""A tool's statement: named (:name) or Toolbox-style ($1) placeholders rewritten for its function.

The lexer skips what is not SQL code (quoted strings and identifiers, dollar quotes, comments) and
the `::` cast operator, so a colon or dollar sign in those is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tenantgate.cli.toolfile.spec import PG_TYPES, Parameter, ToolFileError

CONTEXT = ("org_id", "customer_id")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIGITS = re.compile(r"[0-9]+")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip_quoted(text: str, i: int, quote: str) -> int:
    j = i + 1
    while j < len(text):
        if text[j] == quote:
            if j + 1 < len(text) and text[j + 1] == quote:
                j += 2
                continue
            return j + 1
        if quote == "'" and text[j] == "\\" and i > 0 and text[i - 1] in "eE":
            j += 2
            continue
        j += 1
    raise ToolFileError("unterminated quoted text in the statement")


def rewrite(statement: str, replace: Callable[[str], str], params: list[Parameter]) -> str:
    """The statement with each placeholder replaced by `replace(name)`; one statement only."""
    text = statement.strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    out: list[str] = []
    names = {p.name for p in params} | set(CONTEXT)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            j = _skip_quoted(text, i, ch)
            out.append(text[i:j])
            i = j
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j = len(text) if j < 0 else j
            out.append(text[i:j])
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ToolFileError("unterminated /* comment in the statement")
            out.append(text[i : j + 2])
            i = j + 2
        elif (
            ch == "$"
            and (m := _DOLLAR_TAG.match(text, i))
            and not (i > 0 and text[i - 1].isalnum())
        ):
            tag = m.group(0)
            j = text.find(tag, m.end())
            if j < 0:
                raise ToolFileError(f"unterminated dollar quote {tag} in the statement")
            out.append(text[i : j + len(tag)])
            i = j + len(tag)
        elif ch == "$" and (m := _DIGITS.match(text, i + 1)):
            k = int(m.group(0))
            if not 1 <= k <= len(params):
                raise ToolFileError(
                    f"${k} does not match a declared parameter (there are {len(params)})"
                )
            out.append(replace(params[k - 1].name))
            i = m.end()
        elif ch == ":" and text.startswith("::", i):
            out.append("::")
            i += 2
        elif ch == ":" and (m := _IDENT.match(text, i + 1)) and not (i > 0 and text[i - 1] == ":"):
            name = m.group(0)
            if name not in names:
                raise ToolFileError(
                    f":{name} is neither a declared parameter nor :org_id/:customer_id"
                )
            out.append(replace(name))
            i = m.end()
        elif ch == ";":
            raise ToolFileError("a tool runs exactly one statement: remove the ';' inside it")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def for_function(statement: str, params: list[Parameter]) -> str:
    """Placeholders as the generated function's arguments: $1 org, $2 customer, $3 the arguments."""
    types = {p.name: p.type for p in params}

    def replace(name: str) -> str:
        if name == "org_id":
            return "$1"
        if name == "customer_id":
            return "$2"
        kind = types[name]
        value = f"($3 ->> '{name}')"
        return value if kind == "string" else f"({value})::{PG_TYPES[kind]}"

    return rewrite(statement, replace, params)


def for_describe(statement: str, params: list[Parameter]) -> str:
    """Placeholders as typed NULLs and the nil tenant: plans and describes it, matches no row."""
    types = {p.name: p.type for p in params}

    def replace(name: str) -> str:
        # The tenant as the nil uuid, which no org or customer has: a constant, so Citus routes
        # the statement to one shard as it does the generated function's (a sub-select there
        # makes it a multi-shard query, which refuses a sub-select in LIMIT).
        if name in CONTEXT:
            return "'00000000-0000-0000-0000-000000000000'::uuid"
        # a sub-select, so the planner keeps every scan instead of folding `= NULL` away
        return f"(select null::{PG_TYPES[types[name]]})"

    return rewrite(statement, replace, params)


def uses_context(statement: str, params: list[Parameter]) -> set[str]:
    seen: set[str] = set()

    def replace(name: str) -> str:
        seen.add(name)
        return "null"

    rewrite(statement, replace, params)
    return seen & set(CONTEXT)
