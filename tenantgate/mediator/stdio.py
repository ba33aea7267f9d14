"""The stdio transport on the MCP SDK's low-level server; the token comes from the environment."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from tenantgate.mediator import errors as E
from tenantgate.mediator import observe
from tenantgate.mediator.gate import Approver
from tenantgate.mediator.service import SERVER_NAME, SERVER_VERSION, Mediator, error_result
from tenantgate.mediator.settings import Settings
from tenantgate.mediator.tokens import Claims

logger = logging.getLogger("tenantgate.stdio")


@contextmanager
def _request(method: str) -> Iterator[observe.RequestRecord]:
    """One request's log line, as over HTTP (transport "stdio"). `status` is what the same
    request would have answered over HTTP: 200 answered (a refused tool call included), 401 the
    token failed, 500 an internal error."""
    record = observe.RequestRecord(uuid.uuid4().hex, status=200, method=method)
    try:
        yield record
    except BaseException:
        if record.status == 200:
            record.status = 500
        raise
    finally:
        record.finish(transport="stdio")


def build_server(mediator: Mediator, token: str) -> Server[Any]:
    """A low-level MCP server whose every request re-verifies `token` and re-checks the database."""

    def claims() -> Claims:
        # re-verified on every request: expiry included (the host restarts us with a new token)
        return mediator.verifier.verify(token)

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        with _request("tools/list") as record:
            try:
                c = claims()
            except E.TokenError:
                record.status = 401
                raise MCPError(code=-32600, message="invalid token") from None
            record.org = c.org_id
            try:
                tools = await mediator.list_tools(c)
            except Exception:
                logger.exception("tools/list failed")
                raise MCPError(code=-32603, message="internal error") from None
            observe.learn_tools([t["name"] for t in tools])
            return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in tools])

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        with _request("tools/call") as record:
            try:
                c = claims()
            except E.TokenError:
                record.status = 401
                refused = error_result(E.TokenError().message, E.TokenError.decision)
                return types.CallToolResult.model_validate(refused)
            record.org = c.org_id
            meta = dict(params.meta) if params.meta is not None else None
            started = time.perf_counter()
            result = await mediator.call_tool(
                c, params.name, params.arguments, meta, _approver(ctx)
            )
            record.call(params.name, result, time.perf_counter() - started)
            return types.CallToolResult.model_validate(result)

    return Server(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions="Tools act for one customer, fixed by your session token.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def _approver(ctx: Any) -> Approver | None:
    """Ask the human through the host when the client supports form elicitation."""
    session = ctx.session
    caps = session.client_capabilities
    if caps is None or caps.elicitation is None:
        return None

    async def ask(approval_id: str, tool: str, arguments: dict[str, Any]) -> bool | None:
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(arguments.items()))
        try:
            answer = await session.elicit_form(
                f"Approve {tool}({shown})? (approval {approval_id})",
                {
                    "type": "object",
                    "properties": {"approve": {"type": "boolean"}},
                    "required": ["approve"],
                },
                related_request_id=ctx.request_id,
            )
        except Exception:
            logger.info("elicitation unavailable; approval %s stays pending", approval_id)
            return None
        if answer.action != "accept":
            return False if answer.action == "decline" else None
        return bool((answer.content or {}).get("approve"))

    return ask


async def serve_stdio(settings: Settings) -> None:
    if settings.token is None:
        raise SystemExit("stdio needs TENANTGATE_TOKEN: the host starts the server with the token")
    mediator = await Mediator.start(settings)
    try:
        server = build_server(mediator, settings.token.get_secret_value())
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        await mediator.close()
