"""Prometheus metrics: one registry per app, the metric objects, and counting requests."""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .reputation import Verdict

# Lookups take microseconds, reports and batches milliseconds.
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
"""Request methods labelled as themselves; any other is "other", so labels stay bounded."""
FILTER_OUTCOMES = ("negative", "listed", "stale", "false_positive")
"""negative: not in the filter, answered without the database; listed: a maybe the database
confirmed; stale: a maybe for a number no longer listed (expired, delisted); false_positive:
a maybe for a number nothing is stored about."""


VERDICTS = tuple(verdict.value for verdict in Verdict)


class Tally(Collector):
    """A counter by one label that the lookup path bumps as plain ints (`tally.counts[value]
    += n`), read at scrape time: a prometheus Counter's inc() takes a lock and costs ten
    times as much, on a path whose whole budget is a few microseconds a number."""

    def __init__(self, name: str, documentation: str, label: str, values: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self.counts = dict.fromkeys(values, 0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in self.counts.items():
            family.add_metric([value], count)
        yield family


class _Series:
    """One route, method and status: its count, and its latency figures as a histogram's."""

    __slots__ = ("buckets", "count", "method", "route", "seconds", "status")

    def __init__(self, route: str, method: str, status: int, buckets: int) -> None:
        self.route, self.method, self.status = route, method, status
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * buckets
        """Requests by the first bucket whose bound they are within (not cumulative)."""


class RequestTally(Collector):
    """HTTP requests counted (callguard_http_requests) and timed
    (callguard_http_request_duration_seconds) as plain numbers, as Tally counts lookups: a
    prometheus Counter and Histogram take four locks a request (docs/benchmarks.md has the
    cost). tests/test_metrics.py checks the histogram against prometheus_client's own."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(buckets)
        self._series: dict[Outcome, _Series] = {}

    def observe(self, outcome: Outcome, seconds: float) -> None:
        """Count and time one answered request."""
        series = self._series.get(outcome)
        if series is None:
            resource, method, status = outcome
            series = self._series[outcome] = _Series(
                resource_label(resource), method, status, len(self.bounds) + 1
            )
        series.count += 1
        series.seconds += seconds
        series.buckets[bisect_left(self.bounds, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "callguard_http_requests",
            "HTTP requests answered, by route template, method and status.",
            labels=["route", "method", "status"],
        )
        # Latency is by route and method: the statuses' series are added up.
        latency: dict[tuple[str, str], tuple[list[int], float]] = {}
        for series in self._series.values():
            requests.add_metric([series.route, series.method, str(series.status)], series.count)
            labels = (series.route, series.method)
            counts, seconds = latency.get(labels, ([0] * len(series.buckets), 0.0))
            latency[labels] = (
                [a + b for a, b in zip(counts, series.buckets, strict=True)],
                seconds + series.seconds,
            )
        yield requests
        histogram = HistogramMetricFamily(
            "callguard_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            labels=["route", "method"],
        )
        # The labels prometheus_client's Histogram gives its buckets (e.g. "5e-05").
        bounds = [floatToGoString(b) for b in self.bounds]  # type: ignore[no-untyped-call]
        bounds.append("+Inf")
        for (route, method), (counts, seconds) in latency.items():
            cumulative = list(zip(bounds, itertools.accumulate(counts), strict=True))
            histogram.add_metric([route, method], cumulative, seconds)
        yield histogram


class Metrics:
    """The app's registry and every metric it exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = RequestTally(LATENCY_BUCKETS)
        r.register(self.requests)
        self.lookups = Tally(
            "callguard_lookups", "Numbers looked up, by the verdict given.", "verdict", VERDICTS
        )
        self.filter_checks = Tally(
            "callguard_filter_checks", "Bloom filter checks by outcome.", "outcome", FILTER_OUTCOMES
        )
        r.register(self.lookups)
        r.register(self.filter_checks)
        self.filter_entries = Gauge(
            "callguard_filter_entries", "Distinct numbers in the Bloom filter.", registry=r
        )
        self.filter_capacity = Gauge(
            "callguard_filter_capacity",
            "Numbers the Bloom filter is sized for at its target false-positive rate.",
            registry=r,
        )
        self.filter_bytes = Gauge(
            "callguard_filter_bytes", "Memory held by the Bloom filter's bits.", registry=r
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
        self.cache_lookups = Tally(
            "callguard_cache_lookups",
            "Positive-cache lookups for filter maybes, by result (shared: a miss that waited "
            "for another lookup's read of the same number).",
            "result",
            ("hit", "miss", "shared"),
        )
        r.register(self.cache_lookups)
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
        self.database_up = Gauge(
            "callguard_database_up",
            "1 while this process's change feed is connected to Postgres and caught up (the "
            "connection is checked every 5 s), else 0.",
            registry=r,
        )
        self.reports_accepted = Counter(
            "callguard_reports_accepted",
            "Reports stored, by category and lane (verified, community).",
            ["category", "lane"],
            registry=r,
        )
        self.feedback_accepted = Counter(
            "callguard_feedback_accepted",
            "Not-scam answers stored, by lane (verified, community).",
            ["lane"],
            registry=r,
        )
        self.reviews_opened = Counter(
            "callguard_reviews_opened",
            "Numbers put in the review queue as suspected brigades, by sign (newcomers, "
            "key_share).",
            ["sign"],
            registry=r,
        )

    def track_pool(self, size: Callable[[], int], idle: Callable[[], int]) -> None:
        """Read the pool's figures at scrape time."""
        self.db_pool_size.set_function(size)
        self.db_pool_in_use.set_function(lambda: size() - idle())


Outcome = tuple[AbstractResource | None, str, int]
"""A request's route, method and status: what its counts and its log line are kept by."""


def outcome_of(request: web.Request, status: int) -> Outcome:
    """The request's route, its method (any method not in KNOWN_METHODS as "other", so
    series stay bounded), and the status it was answered with."""
    method = request.method
    if method not in KNOWN_METHODS:
        method = "other"
    return request.match_info.route.resource, method, status


def route_label(request: web.Request) -> str:
    """The route template ("unmatched" for a request no route took), so label values stay
    bounded whatever paths clients send."""
    return resource_label(request.match_info.route.resource)


def resource_label(resource: AbstractResource | None) -> str:
    """A route's template; "unmatched" for no route."""
    return resource.canonical if resource is not None else "unmatched"
