"""Prometheus metrics across several uvicorn workers: prometheus_client's multiprocess mode.

With `WORKERS` > 1 a scrape reaches one worker, so each worker's counters and histograms live in
memory-mapped files in one shared folder and /metrics, answered by any worker, merges them all:
the numbers are the sums across workers. `serve` makes that folder private (mode 0700, under the
system's temporary folder) and removes it when it stops; a `PROMETHEUS_MULTIPROC_DIR` set by the
operator is used as it is and left in place (clear it between runs: old files are summed too).

The database pool statistics become gauges summed over the live workers (`livesum`): each worker
refreshes its own at most once a second, on a request, and on a scrape.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
REFRESH_SECONDS = 1.0


def active() -> bool:
    """Whether this process writes its metrics to a shared folder (decided at start)."""
    return bool(os.environ.get(ENV))


@contextmanager
def shared_dir() -> Iterator[str]:
    """The folder the workers share for as long as the block runs (made and removed here unless
    the operator named one)."""
    given = os.environ.get(ENV)
    if given:
        if not os.path.isdir(given):
            raise SystemExit(f"{ENV}={given} is not a folder: create it, or unset it")
        yield given
        return
    folder = tempfile.mkdtemp(prefix="tenantgate-metrics-")  # mode 0700
    os.environ[ENV] = folder  # the workers inherit it
    try:
        yield folder
    finally:
        os.environ.pop(ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def exposition() -> bytes:
    """Every worker's metrics, merged (counters and histograms summed, pool gauges summed over
    the live workers)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    refresh_pools(force=True)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


_pools: list[Any] = []
_gauges: dict[str, Any] = {}
_last = [0.0]


def watch(pool: Any) -> None:
    """Report `pool` from this worker; its gauges leave the sums when the worker exits."""
    from prometheus_client import multiprocess

    if not _pools:
        pid = os.getpid()
        atexit.register(lambda: multiprocess.mark_process_dead(pid))  # type: ignore[no-untyped-call]
    _pools.append(pool)
    refresh_pools(force=True)


def refresh_pools(force: bool = False) -> None:
    """Write this worker's pool statistics (at most once a second unless forced)."""
    now = time.monotonic()
    if not _pools or (not force and now - _last[0] < REFRESH_SECONDS):
        return
    _last[0] = now
    from prometheus_client import Gauge

    for pool in _pools:
        for key, value in pool.get_stats().items():
            gauge = _gauges.get(key)
            if gauge is None:
                gauge = Gauge(
                    f"tenantgate_db_pool_{key}",
                    f"psycopg_pool {key}, summed over the live workers",
                    ["pool"],
                    registry=None,
                    multiprocess_mode="livesum",
                )
                _gauges[key] = gauge
            gauge.labels(pool.name).set(float(value))
