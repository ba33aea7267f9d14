"""A tool's answer as a CallToolResult: the data once, in structuredContent, under the byte cap.

The text content is the same JSON when the whole result (data and text) fits in `max_bytes`; when
it does not, the text is a one-line summary pointing at structuredContent, so the data never
travels twice. A result still over the cap loses trailing items (`truncated: true`) or, for one
record, trailing fields (named in `_omitted`) until it fits.
"""

from __future__ import annotations

from typing import Any

from tenantgate.mediator.shaping import dumps

# Without a known cap, the text repeats the data only up to this size (then a summary).
TEXT_COPY_BYTES = 2048


def _result(text: str, value: Any) -> dict[str, Any]:
    return {
        "content": [{"type": "text", "text": text}],
        "structuredContent": value,
        "isError": False,
    }


def _size(result: dict[str, Any]) -> int:
    return len(dumps(result))


def summary(value: Any) -> str:
    """One line that says what structuredContent holds, without repeating it."""
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        n = len(value["items"])
        more = ", more rows exist (truncated)" if value.get("truncated") else ""
        return f"{n} row{'s' if n != 1 else ''}{more}; the rows are in structuredContent"
    if isinstance(value, dict):
        return f"1 record ({', '.join(map(str, value))}); the record is in structuredContent"
    return "the result is in structuredContent"


def ok_result(value: Any, max_bytes: int | None) -> dict[str, Any]:
    """The CallToolResult for `value`, its JSON at most `max_bytes` long.

    `max_bytes=None` (the cap is enforced where the data was shaped, unknown here): the text is
    the same JSON up to TEXT_COPY_BYTES, else the summary; nothing is trimmed."""
    data = dumps(value).decode()
    if max_bytes is None:
        return _result(data if len(data) <= TEXT_COPY_BYTES else summary(value), value)
    whole = _result(data, value)
    if _size(whole) <= max_bytes:
        return whole
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        items = list(value["items"])
        trimmed = {**value, "truncated": value.get("truncated", False)}
        while True:
            trimmed["items"] = items
            result = _result(summary(trimmed), trimmed)
            if _size(result) <= max_bytes or not items:
                return result
            items = items[:-1]
            trimmed["truncated"] = True
    if isinstance(value, dict):
        kept = dict(value)
        omitted: list[str] = []
        while True:
            shown = {**kept, "_omitted": omitted} if omitted else kept
            result = _result(summary(shown), shown)
            if _size(result) <= max_bytes or not kept:
                return result
            name = next(reversed(kept))
            kept.pop(name)
            omitted.insert(0, name)
    return _result(summary(value), value)
