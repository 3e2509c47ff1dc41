"""Looking numbers up and reporting them: the Bloom filter in front, Postgres behind.

A number the filter has never seen is answered "unknown" without a database round trip;
only a "maybe" reads its listing. A report lands in Postgres first, then in the filter.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service import store
from service.filter import NumberFilter, make_filter
from service.metrics import Metrics
from service.reputation import Judgement, judge
from service.store import Listing, NewReport

REPORTER_KEY_SETTING = "reporter_hash_key"


@dataclass(frozen=True, slots=True)
class Answer:
    """What a lookup says about one number."""

    number: int
    listing: Listing | None
    judgement: Judgement


@dataclass(frozen=True, slots=True)
class Report:
    """A report as a client sends it, number already normalised."""

    number: int
    category: str
    reporter: str
    """The app's pseudonymous id of the person reporting; only a keyed hash is kept."""
    description: str | None
    occurred_at: datetime | None


async def build_filter(
    pool: asyncpg.Pool, backend: str, error_rate: float, min_capacity: int
) -> NumberFilter:
    """A filter holding every listed number, sized with room to grow."""
    capacity = max(min_capacity, 2 * await store.count_listings(pool))
    number_filter = make_filter(backend, capacity, error_rate)
    async for numbers in store.listed_numbers(pool):
        number_filter.update(numbers)
    return number_filter


class Listings:
    """The read and write paths for listed numbers in one process."""

    def __init__(
        self, pool: asyncpg.Pool, number_filter: NumberFilter, metrics: Metrics, reporter_key: bytes
    ) -> None:
        self.pool = pool
        self.filter = number_filter
        self._metrics = metrics
        self._reporter_key = reporter_key
        self._negative = metrics.filter_checks.labels("negative")
        self._listed = metrics.filter_checks.labels("listed")
        self._false_positive = metrics.filter_checks.labels("false_positive")
        metrics.filter_entries.set_function(lambda: self.filter.entries)
        metrics.filter_capacity.set_function(lambda: self.filter.capacity)
        metrics.filter_bytes.set_function(lambda: self.filter.nbytes)

    async def lookup(self, number: int) -> Answer:
        """The verdict on one number."""
        listing = None
        if number in self.filter:
            listing = await store.get_listing(self.pool, number)
            self._count_maybe(listing is not None)
        else:
            self._negative.inc()
        return self._looked_up(number, listing)

    async def lookup_many(self, numbers: Sequence[int]) -> list[Answer]:
        """The verdicts on many numbers, in their order, with one query for all the maybes."""
        maybes = [number for number in numbers if number in self.filter]
        self._negative.inc(len(numbers) - len(maybes))
        listings = await store.get_listings(self.pool, maybes) if maybes else {}
        for number in maybes:
            self._count_maybe(number in listings)
        return [self._looked_up(number, listings.get(number)) for number in numbers]

    async def report(self, report: Report, api_key_id: int) -> tuple[int, Answer]:
        """Store a report and list its number; return the report id and the new verdict."""
        new_report = NewReport(
            number=report.number,
            category=report.category,
            reporter_hash=hmac.digest(
                self._reporter_key, report.reporter.encode("utf-8"), hashlib.sha256
            ),
            description=report.description,
            occurred_at=report.occurred_at,
            api_key_id=api_key_id,
        )
        report_id, listing = await store.add_report(self.pool, new_report)
        self.filter.add(report.number)
        self._metrics.reports_accepted.labels(report.category).inc()
        return report_id, Answer(report.number, listing, judge(listing))

    def _count_maybe(self, listed: bool) -> None:
        (self._listed if listed else self._false_positive).inc()

    def _looked_up(self, number: int, listing: Listing | None) -> Answer:
        judgement = judge(listing)
        self._metrics.lookups.labels(judgement.verdict.value).inc()
        return Answer(number, listing, judgement)
