"""A fake billing API on 127.0.0.1 for tests and the demo: each customer's own key, its own data.

    with FakeBilling({"acme-key...": {"customer": "Acme", "plan": "pro"}}) as fake:
        fake.base_url            # http://127.0.0.1:<free port>
        ...                      # GET /v1/billing/status with "Authorization: Bearer <key>"
        fake.received            # every request as received, headers included

Routes: ``/v1/billing/status`` answers the data of the account whose key was sent (401 without a
known key). Misbehaving routes, to test the client: ``/v1/echo`` echoes the credential header back,
``/v1/redirect`` redirects to another host, ``/v1/large`` answers 2 MiB, ``/v1/slow`` waits 5 s.

From a shell (the demo): ``python -m mediator.fake_upstream --port 8765 --accounts accounts.json``
where the file maps each API key to the JSON object returned for it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["FakeBilling", "ReceivedRequest"]


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the fake upstream saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class FakeBilling:
    """The fake upstream; a context manager that serves on a background thread."""

    def __init__(
        self,
        accounts: Mapping[str, Mapping[str, Any]],
        *,
        auth_header: str = "Authorization",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._accounts = {key: dict(data) for key, data in accounts.items()}
        self._auth_header = auth_header
        self._received: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._received)

    def add_account(self, api_key: str, data: Mapping[str, Any]) -> None:
        """Accept ``api_key`` from now on, answering ``data`` for it."""
        with self._lock:
            self._accounts[api_key] = dict(data)

    def start(self) -> FakeBilling:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeBilling:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"FakeBilling(base_url={self.base_url!r}, accounts={len(self._accounts)})"

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._received.append(request)

    def _account_for(self, credential: str | None) -> dict[str, Any] | None:
        if credential is None:
            return None
        if self._auth_header.lower() == "authorization":
            scheme, _, credential = credential.partition(" ")
            if scheme.lower() != "bearer":
                return None
        with self._lock:
            return self._accounts.get(credential)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                credential = self.headers.get(fake._auth_header)
                fake._record(
                    ReceivedRequest(
                        method="GET",
                        path=url.path,
                        query=urllib.parse.parse_qs(url.query),
                        headers={k.lower(): v for k, v in self.headers.items()},
                    )
                )
                if url.path == "/v1/redirect":
                    self._send(302, b"", location="http://elsewhere.invalid/v1/billing/status")
                    return
                account = fake._account_for(credential)
                if account is None:
                    self._json(401, {"error": "unknown or missing api key"})
                elif url.path == "/v1/billing/status":
                    self._json(200, account)
                elif url.path == "/v1/echo":
                    self._json(200, {"you_sent": credential, "note": f"key was {credential}"})
                elif url.path == "/v1/large":
                    self._json(200, {"blob": "x" * (2 << 20)})
                elif url.path == "/v1/slow":
                    time.sleep(5)
                    self._json(200, account)
                else:
                    self._json(404, {"error": "no such route"})

            def _json(self, status: int, document: Mapping[str, Any]) -> None:
                self._send(status, json.dumps(document).encode())

            def _send(self, status: int, body: bytes, location: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if location is not None:
                    self.send_header("Location", location)
                self.end_headers()
                # the client may stop reading (size cap, timeout): expected
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # stay quiet: request lines would land in test output

        return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve the fake billing API until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--accounts", type=Path, required=True, help="JSON: api key -> data")
    parser.add_argument("--auth-header", default="Authorization")
    args = parser.parse_args(argv)
    accounts = json.loads(args.accounts.read_text(encoding="utf-8"))
    fake = FakeBilling(accounts, auth_header=args.auth_header, port=args.port).start()
    print(f"fake billing API on {fake.base_url} ({len(accounts)} accounts)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
