"""Prometheus metrics: one registry per app, the metric objects, and the request middleware."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Lookups take microseconds, reports and batches milliseconds.
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip

FILTER_OUTCOMES = ("negative", "listed", "stale", "false_positive")
"""negative: not in the filter, answered without the database; listed: a maybe the database
confirmed; stale: a maybe for a number no longer listed (expired, delisted); false_positive:
a maybe for a number nothing is stored about."""


class Metrics:
    """The app's registry and every metric it exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "callguard_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "callguard_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lookups = Counter(
            "callguard_lookups",
            "Numbers looked up, by the verdict given.",
            ["verdict"],
            registry=r,
        )
        self.filter_checks = Counter(
            "callguard_filter_checks",
            "Bloom filter checks by outcome.",
            ["outcome"],
            registry=r,
        )
        for outcome in FILTER_OUTCOMES:
            self.filter_checks.labels(outcome)
        self.filter_entries = Gauge(
            "callguard_filter_entries", "Numbers in the Bloom filter.", registry=r
        )
        self.filter_capacity = Gauge(
            "callguard_filter_capacity",
            "Numbers the Bloom filter is sized for at its target false-positive rate.",
            registry=r,
        )
        self.filter_bytes = Gauge(
            "callguard_filter_bytes", "Memory held by the Bloom filter's bits.", registry=r
        )
        self.filter_false_positive_rate = Gauge(
            "callguard_filter_false_positive_rate",
            "Measured: of the lookups of numbers nothing is stored about, the share the Bloom "
            "filter answered maybe.",
            registry=r,
        )
        self.filter_stale_share = Gauge(
            "callguard_filter_stale_share",
            "Share of the Bloom filter's entries no longer listed, at the last check.",
            registry=r,
        )
        self.filter_builds = Counter(
            "callguard_filter_builds",
            "Bloom filters built, from a snapshot plus the log or from the tables.",
            ["source"],
            registry=r,
        )
        self.filter_build_seconds = Gauge(
            "callguard_filter_build_seconds",
            "How long the last filter build took.",
            ["source"],
            registry=r,
        )
        self.cache_lookups = Counter(
            "callguard_cache_lookups",
            "Positive-cache lookups for filter maybes, by result.",
            ["result"],
            registry=r,
        )
        for result in ("hit", "miss"):
            self.cache_lookups.labels(result)
        self.cache_entries = Gauge(
            "callguard_cache_entries", "Numbers in the positive cache.", registry=r
        )
        self.change_cursor = Gauge(
            "callguard_change_cursor",
            "The last change-log seq applied to this process's filter and cache.",
            registry=r,
        )
        self.db_pool_size = Gauge(
            "callguard_db_pool_connections", "Connections open in the database pool.", registry=r
        )
        self.db_pool_in_use = Gauge(
            "callguard_db_pool_connections_in_use",
            "Database pool connections checked out.",
            registry=r,
        )
        self.reports_accepted = Counter(
            "callguard_reports_accepted", "Reports stored, by category.", ["category"], registry=r
        )

    def track_pool(self, size: Callable[[], int], idle: Callable[[], int]) -> None:
        """Read the pool's figures at scrape time."""
        self.db_pool_size.set_function(size)
        self.db_pool_in_use.set_function(lambda: size() - idle())


def route_label(request: web.Request) -> str:
    """The route template, so label values stay bounded whatever paths clients send."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def metrics_middleware(metrics: Metrics) -> Middleware:
    """Count and time every request; outermost, so it sees the final status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = route_label(request)
            metrics.http_requests.labels(route, request.method, str(status)).inc()
            metrics.http_latency.labels(route, request.method).observe(
                time.perf_counter() - started
            )

    return middleware
