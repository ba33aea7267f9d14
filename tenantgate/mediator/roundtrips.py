"""Count client/server round trips of a pooled connection from libpq's protocol trace."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg.pq import Trace
from psycopg_pool import AsyncConnectionPool


class RoundTrips:
    """A round trip is a run of frontend messages followed by the backend's answer."""

    def __init__(self) -> None:
        self.count = 0
        self.syncs = 0

    def parse(self, trace: str) -> None:
        last = "B"
        for line in trace.splitlines():
            direction = line[:1]
            if direction == "F" and last == "B":
                self.count += 1
            if direction in ("F", "B"):
                last = direction
            if direction == "F" and "\tSync" in line:
                self.syncs += 1


@asynccontextmanager
async def traced(pool: AsyncConnectionPool[Any]) -> AsyncIterator[RoundTrips]:
    """Trace every connection the (size-1) pool holds while the block runs."""
    rt = RoundTrips()
    fd, path = tempfile.mkstemp(prefix="tg-trace-")
    async with pool.connection() as conn:
        pgconn = conn.pgconn
    pgconn.trace(fd)
    pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
    try:
        yield rt
    finally:
        pgconn.untrace()
        os.close(fd)
        with open(path) as f:
            rt.parse(f.read())
        os.unlink(path)
