"""Several HTTP worker processes, each accepting on its own socket bound to the same port.

uvicorn's own `--workers` shares one listening socket among the workers: whichever wakes first
accepts, and MCP hosts keep their connections alive, so on a busy machine one worker ended up with
every connection (8 of 8 in bench/mcp_e2e.py) while the others idled, and two workers served
fewer calls than one. Here every worker binds its own socket with SO_REUSEPORT and the kernel
spreads new connections over them by address hash; only processes of the same user can join
that port. The supervisor holds a bound, never-listening socket on the port (so port 0 resolves
once, to one port for all), restarts a worker that dies, stops them all on SIGTERM/SIGINT, and
gives up (exit 3) when a worker fails at start, as uvicorn does.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from typing import Any

logger = logging.getLogger("tenantgate.workers")

STARTUP_FAILURE = 3  # uvicorn's exit code when the app cannot start


def listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT; listening is the caller's call."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own socket, uvicorn, the ASGI factory (one mediator each)."""
    import uvicorn

    sock = listener(host, port)
    config = uvicorn.Config(
        "tenantgate.mediator.http:create_app", factory=True, host=host, port=port, **options
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Run `workers` worker processes on host:port until SIGTERM or SIGINT."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise SystemExit("several workers need SO_REUSEPORT (Linux, BSD, macOS)")
    holder = listener(host, port)  # keeps the port ours between worker restarts
    port = holder.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    stopping: list[int] = []

    def start() -> BaseProcess:
        proc = spawn.Process(target=_worker, args=(host, port, options), daemon=False)
        proc.start()
        return proc

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    procs = [start() for _ in range(workers)]
    logger.info("serving on %s:%d with %d workers (SO_REUSEPORT)", host, port, workers)
    code = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                if proc.is_alive() or stopping:
                    continue
                if proc.exitcode == STARTUP_FAILURE:
                    logger.error("a worker failed to start; stopping (see the lines above)")
                    stopping.append(0)
                    code = STARTUP_FAILURE
                    break
                logger.warning("worker %d exited (code %s); starting another", i, proc.exitcode)
                procs[i] = start()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # uvicorn: finish the requests in flight, then exit
        deadline = time.monotonic() + 30
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        holder.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if code:
        sys.exit(code)
