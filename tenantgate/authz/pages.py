"""Server-rendered pages: plain HTML forms, no JavaScript, readable on a phone.

Every value is escaped here; callers pass plain strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from typing import Any

STYLE = """
*{box-sizing:border-box}body{font:16px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;
background:#f6f7f9}main{max-width:34rem;margin:0 auto;padding:1rem}h1{font-size:1.35rem}
.card{background:#fff;border:1px solid #d8dde3;border-radius:.5rem;padding:1rem;margin:.75rem 0}
label{display:block;padding:.35rem 0}button{font:inherit;padding:.6rem 1rem;border-radius:.4rem;
border:1px solid #1f5fbf;background:#1f5fbf;color:#fff;margin:.25rem .25rem .25rem 0}
button.secondary{background:#fff;color:#1f5fbf}.muted{color:#5b6570;font-size:.9rem}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:.6rem;border-radius:.4rem}
pre{white-space:pre-wrap;word-break:break-word;background:#f0f2f5;padding:.5rem;
border-radius:.3rem;font-size:.85rem}.error{color:#a11}
"""


def e(value: Any) -> str:
    return escape(str(value), quote=True)


def layout(title: str, body: str, banner: str = "") -> str:
    top = f'<p class="banner">{e(banner)}</p>' if banner else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{top}<h1>{e(title)}</h1>{body}</main></body></html>"
    )


def hidden(fields: dict[str, str]) -> str:
    return "".join(f'<input type=hidden name="{e(k)}" value="{e(v)}">' for k, v in fields.items())


def error_page(message: str, hint: str = "") -> str:
    extra = f'<p class="muted">{e(hint)}</p>' if hint else ""
    card = f"<div class=card><p class=error>{e(message)}</p>{extra}</div>"
    return layout("Cannot continue", card)


def consent_page(
    *,
    client_name: str,
    client_id: str,
    operator: str,
    org: str,
    choices: Iterable[tuple[str, str]],
    scopes: list[str],
    form: dict[str, str],
) -> str:
    options = "".join(
        f'<label><input type=radio name=customer value="{e(value)}" required> {e(text)}</label>'
        for value, text in choices
    )
    if not options:
        options = "<p class=error>Your org has no active customer you may pick.</p>"
    scope_boxes = "".join(
        f'<label><input type=checkbox name=scope value="{e(s)}" checked> {e(s)}</label>'
        for s in scopes
    )
    body = (
        f'<div class=card><p><b>{e(client_name or client_id)}</b> asks to act for one customer '
        f"of <b>{e(org)}</b>, as you ({e(operator)}).</p>"
        f'<p class=muted>Client: {e(client_id)}</p></div>'
        '<form method=post action="consent" class=card>'
        f"{hidden(form)}<fieldset><legend>Customer</legend>{options}</fieldset>"
        f"<fieldset><legend>Scopes (untick to narrow)</legend>{scope_boxes}</fieldset>"
        "<button name=decision value=allow>Allow</button>"
        '<button class=secondary name=decision value=deny formnovalidate>Deny</button>'
        "</form>"
    )
    return layout("Connect an AI host", body)


def approvals_page(
    *, operator: str, org: str, rows: list[dict[str, Any]], csrf: str, notice: str = ""
) -> str:
    items = []
    for r in rows:
        preview = r.get("preview")
        preview_html = (
            f"<p class=muted>Target now:</p><pre>{e(json.dumps(preview, indent=1))}</pre>"
            if preview is not None
            else ""
        )
        own = bool(r.get("own_request"))
        buttons = (
            "<p class=muted>Your own request: another operator decides.</p>"
            if own
            else (
                f'<form method=post action="approvals/{e(r["approval_id"])}">'
                f"{hidden({'csrf': csrf})}"
                "<button name=decision value=approve>Approve</button>"
                '<button class=secondary name=decision value=deny>Deny</button></form>'
            )
        )
        items.append(
            f'<div class=card><p><b>{e(r["tool_name"])}</b> for {e(r["customer_name"])}</p>'
            f'<p class=muted>asked by {e(r["requested_by"])} at {e(r["created_at"])}</p>'
            f"<pre>{e(json.dumps(r['arguments'], indent=1))}</pre>{preview_html}{buttons}</div>"
        )
    listing = "".join(items) or "<p class=card>Nothing waits for a decision.</p>"
    note = f'<p class=card>{e(notice)}</p>' if notice else ""
    return layout(
        "Pending approvals",
        f"<p class=muted>{e(operator)} · {e(org)}</p>{note}{listing}",
    )
