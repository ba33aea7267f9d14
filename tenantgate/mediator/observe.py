"""Prometheus metrics and the one log line per HTTP request.

Labels stay bounded: a tool label is a name the mediator has seen in a catalog it listed or in a
call that ran, anything else counts as `other` (a client cannot grow the label set by inventing
names). Neither metrics nor the request line ever carry a token, secret or argument value.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tenantgate.mediator import metrics_mp
from tenantgate.mediator.gate import TOOL_NAME

access_log = logging.getLogger("tenantgate.access")

REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DECISIONS = (
    "allowed",
    "denied",
    "invalid_arguments",
    "rate_limited",
    "no_credit",
    "approval_required",
    "approval_denied",
    "upstream_error",
    "unavailable",
    "error",
    "token_invalid",
)
TOOL_CALLS = Counter(
    "tenantgate_tool_calls",
    "Tool calls by tool and decision (token_invalid: refused before any tool was named).",
    ["tool", "decision"],
    registry=REGISTRY,
)
TOOL_SECONDS = Histogram(
    "tenantgate_tool_call_seconds",
    "Wall time of a tool call inside the mediator, database round trips included.",
    ["tool"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
REQUESTS = Counter(
    "tenantgate_http_requests",
    "HTTP requests by JSON-RPC method and status.",
    ["method", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "tenantgate_http_request_seconds",
    "Wall time of an HTTP request, from its first byte to its answer.",
    ["method"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_CALLS = Counter(
    "tenantgate_upstream_calls",
    "Calls to customers' upstream APIs by outcome (ok, denied by egress policy, error).",
    ["outcome"],
    registry=REGISTRY,
)
UPSTREAM_SECONDS = Histogram(
    "tenantgate_upstream_call_seconds",
    "Wall time of an upstream API call.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
RPC_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "server/discover",
        "notifications/cancelled",
        "notifications/initialized",
    }
)
MAX_KNOWN_TOOLS = 1000

_known_tools: set[str] = set()
# The labelled children already made, by (metric, labels): labels() hashes, checks and
# locks on every call; the label sets are bounded (see above), so this map is too.
_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, made once per label set."""
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def learn_tools(names: Iterator[str] | list[str]) -> None:
    """Names from a listed catalog become metric labels (bounded)."""
    for name in names:
        if len(_known_tools) >= MAX_KNOWN_TOOLS:
            return
        if isinstance(name, str) and TOOL_NAME.match(name):
            _known_tools.add(name)


def tool_label(name: Any) -> str:
    return name if isinstance(name, str) and name in _known_tools else "other"


def decision_of(result: dict[str, Any]) -> str:
    """The decision a CallToolResult reports: the one its error carried (service.error_result)."""
    if not result.get("isError"):
        return "allowed"
    return str(getattr(result, "decision", "error"))


@dataclass(slots=True)
class RequestRecord:
    """What the request line says; filled in as the request goes through the transport."""

    request_id: str
    started: float = field(default_factory=time.perf_counter)
    status: int = 0
    method: str = "-"
    org: str | None = None
    tools: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)

    def call(self, name: Any, result: dict[str, Any], seconds: float) -> None:
        """One tools/call answered: count it, time it, remember it for the line."""
        decision = decision_of(result)
        if decision == "allowed":
            learn_tools([name] if isinstance(name, str) else [])
        label = tool_label(name)
        _child(TOOL_CALLS, label, decision).inc()
        _child(TOOL_SECONDS, label).observe(seconds)
        self.tools.append(label)
        self.decisions.append(decision)

    def finish(self, transport: str = "http") -> None:
        """Count the request (HTTP metrics for HTTP only) and write its one log line."""
        seconds = time.perf_counter() - self.started
        method = self.method if self.method in RPC_METHODS else "other"
        if self.status == 401:
            _child(TOOL_CALLS, "-", "token_invalid").inc()
            self.decisions.append("token_invalid")
        if transport == "http":
            _child(REQUESTS, method, str(self.status)).inc()
            _child(REQUEST_SECONDS, method).observe(seconds)
            metrics_mp.refresh_pools()
        access_log.info(
            "request",
            extra={
                "request": {
                    "transport": transport,
                    "request_id": self.request_id,
                    "org": self.org,
                    "method": method,
                    "tool": ",".join(self.tools) or None,
                    "decision": ",".join(self.decisions) or None,
                    "status": self.status,
                    "duration_ms": round(seconds * 1000, 3),
                }
            },
        )


def upstream_done(outcome: str, started: float) -> None:
    _child(UPSTREAM_CALLS, outcome).inc()
    UPSTREAM_SECONDS.observe(time.perf_counter() - started)


class _PoolCollector(Collector):
    """Live statistics of every mediator pool in this process (psycopg_pool's get_stats)."""

    def __init__(self) -> None:
        self.pools: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        for pool in list(self.pools):
            stats = pool.get_stats()
            for key, value in stats.items():
                family = families.get(key)
                if family is None:
                    family = GaugeMetricFamily(
                        f"tenantgate_db_pool_{key}", f"psycopg_pool {key}", labels=["pool"]
                    )
                    families[key] = family
                family.add_metric([pool.name], float(value))
        yield from families.values()

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


_pool_collector = _PoolCollector()
REGISTRY.register(_pool_collector)


def watch_pool(pool: Any) -> None:
    if metrics_mp.active():
        metrics_mp.watch(pool)
    else:
        _pool_collector.pools.add(pool)


def exposition() -> tuple[bytes, bytes]:
    """The /metrics body and its content type (every worker's sums with WORKERS > 1)."""
    if metrics_mp.active():
        return metrics_mp.exposition(), CONTENT_TYPE_LATEST.encode()
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST.encode()
