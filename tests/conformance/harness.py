"""The mediator as the MCP conformance suite sees it (`.ci/conformance.sh` runs this).

Starts the embedded PostgreSQL with the demo seed (`cli.demo.setup`), opens one session for the
customer Acme, serves the mediator on loopback, and in front of it a loopback proxy that adds
`Authorization: Bearer <token>` to every request: `@modelcontextprotocol/conformance` has no way
to send a header. Everything else (Host, Origin, the body) passes through unchanged, so the suite
still tests the mediator's own DNS-rebinding checks. Prints the proxy's URL on one line, then
serves until SIGTERM or SIGINT, and cleans up (the database stops, its files go).
"""

from __future__ import annotations

import shutil
import signal
import socket
import sys
import threading
import time
from typing import Any

import httpx
import uvicorn

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "content-length",
        "authorization",
        "proxy-authorization",
    }
)


class AddAuthorization:
    """An ASGI app forwarding every HTTP request to `upstream`, with the bearer token added."""

    def __init__(self, upstream: str, token: str) -> None:
        self.upstream, self.token = upstream.rstrip("/"), token
        self.client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if self.client is not None:
                await self.client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=60, trust_env=False)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [  # values without surrounding whitespace (RFC 9110 5.5; httpx insists)
            (k.decode("latin-1"), v.decode("latin-1").strip(" \t"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in HOP_BY_HOP
        ]
        headers.append(("authorization", f"Bearer {self.token}"))
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.upstream + scope["path"] + (f"?{query}" if query else "")
        answer = await self.client.request(scope["method"], url, content=body, headers=headers)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in answer.headers.items()
                    if k.lower() not in HOP_BY_HOP
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.content})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(app: Any, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("a loopback server did not start")
        time.sleep(0.05)
    return server


def main() -> int:
    from tenantgate.cli.demo import setup, start_http_thread

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    env = setup(_free_port())
    try:
        token = env.open("Acme").token
        mediator, _ = start_http_thread(env.settings)
        proxy_port = _free_port()
        proxy = _serve(AddAuthorization(f"http://127.0.0.1:{env.port}", token), proxy_port)
        print(f"http://127.0.0.1:{proxy_port}/mcp", flush=True)
        stop.wait()
        proxy.should_exit = mediator.should_exit = True
        time.sleep(0.5)
    finally:
        env.server.stop()
        shutil.rmtree(env.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
